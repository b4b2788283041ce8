#include "prober.h"

#include "podium/common/http_client.h"
#include "podium/common/strings.h"
#include "podium/mesh/workload.h"

namespace podium::node {

using SteadyClock = std::chrono::steady_clock;

const char* Prober::kindName(Kind k) {
  switch (k) {
    case Kind::Liveness:
      return "Liveness";
    case Kind::Readiness:
      return "Readiness";
    case Kind::Startup:
      return "Startup";
  }
  return "";
}

Prober::Prober(CriClient& cri, ResultChanged changed, Failed failed, int workers)
    : cri_(cri), changed_(std::move(changed)), failed_(std::move(failed)) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

Prober::~Prober() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {
std::string keyOf(const std::string& containerId, Prober::Kind k) {
  return containerId + "/" + Prober::kindName(k);
}
}  // namespace

void Prober::track(const std::string& podKey, const std::string& podIp,
                   const std::string& containerId, const std::string& containerName,
                   const Json& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto [field, kind] :
       {std::pair{"livenessProbe", Kind::Liveness}, std::pair{"readinessProbe", Kind::Readiness},
        std::pair{"startupProbe", Kind::Startup}}) {
    const Json* probe = json::find(spec, {field});
    std::string key = keyOf(containerId, kind);
    if (!probe || !probe->is_object()) {
      probes_.erase(key);
      continue;
    }
    if (probes_.count(key)) {
      probes_[key].podIp = podIp;
      continue;
    }
    Probe p;
    p.podKey = podKey;
    p.podIp = podIp;
    p.containerId = containerId;
    p.containerName = containerName;
    p.kind = kind;
    p.spec = *probe;
    p.containerSpec = spec;
    p.result = kind == Kind::Liveness;
    p.next =
        SteadyClock::now() + std::chrono::seconds(json::integer(*probe, "initialDelaySeconds", 0));
    probes_[key] = std::move(p);
  }
  cv_.notify_all();
}

void Prober::untrackExcept(const std::string& podKey, const std::set<std::string>& keep) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = probes_.begin(); it != probes_.end();) {
    if (it->second.podKey == podKey && !keep.count(it->second.containerId))
      it = probes_.erase(it);
    else
      ++it;
  }
}

bool Prober::ready(const std::string& containerId) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = probes_.find(keyOf(containerId, Kind::Startup));
  if (s != probes_.end() && !s->second.result) return false;
  auto it = probes_.find(keyOf(containerId, Kind::Readiness));
  return it == probes_.end() || it->second.result;
}

bool Prober::started(const std::string& containerId) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = probes_.find(keyOf(containerId, Kind::Startup));
  return it == probes_.end() || it->second.result;
}

bool Prober::livenessFailed(const std::string& containerId) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (Kind k : {Kind::Liveness, Kind::Startup}) {
    auto it = probes_.find(keyOf(containerId, k));
    // A startup probe that reached its failure threshold kills the container too.
    if (it != probes_.end() && !it->second.result &&
        (k == Kind::Liveness ||
         it->second.failures >= json::integer(it->second.spec, "failureThreshold", 3)))
      return true;
  }
  return false;
}

std::pair<bool, std::string> Prober::run(const Probe& p) {
  const Json& s = p.spec;
  auto timeout = std::chrono::seconds(std::max<int64_t>(1, json::integer(s, "timeoutSeconds", 1)));
  auto port = [&](const Json& handler) -> int {
    const Json* v = json::find(handler, {"port"});
    if (!v) return 0;
    if (v->is_number_integer()) return static_cast<int>(v->get<int64_t>());
    if (v->is_string()) {
      std::string name = v->get<std::string>();
      const Json* ports = json::find(p.containerSpec, {"ports"});
      if (ports && ports->is_array())
        for (const auto& cp : *ports)
          if (json::str(cp, "name") == name)
            return static_cast<int>(json::integer(cp, "containerPort"));
      return static_cast<int>(strings::parseInt(name).value_or(0));
    }
    return 0;
  };
  if (const Json* h = json::find(s, {"httpGet"})) {
    std::string host = json::str(*h, "host", p.podIp);
    std::map<std::string, std::string> headers;
    if (const Json* hs = json::find(*h, {"httpHeaders"}); hs && hs->is_array())
      for (const auto& kv : *hs) headers[json::str(kv, "name")] = json::str(kv, "value");
    int prt = port(*h);
    std::string path = json::str(*h, "path", "/");
    auto r =
        net::httpGet(host, prt, path, timeout, headers, host == p.podIp ? mesh::kProbeSource : "");
    if (!r)
      return {false,
              "Get \"http://" + host + ":" + std::to_string(prt) + path + "\": " + r.error()};
    if (r->status >= 200 && r->status < 400) return {true, ""};
    return {false, "HTTP probe failed with statuscode: " + std::to_string(r->status)};
  }
  if (const Json* t = json::find(s, {"tcpSocket"})) {
    std::string host = json::str(*t, "host", p.podIp);
    auto r = net::tcpConnect(host, port(*t), timeout, host == p.podIp ? mesh::kProbeSource : "");
    if (!r) return {false, r.error()};
    return {true, ""};
  }
  if (const Json* e = json::find(s, {"exec"})) {
    std::vector<std::string> cmd;
    if (const Json* c = json::find(*e, {"command"}); c && c->is_array())
      for (const auto& a : *c)
        if (a.is_string()) cmd.push_back(a.get<std::string>());
    auto r = cri_.execSync(p.containerId, cmd, timeout.count());
    if (!r) return {false, r.error().message};
    if (r->exit_code() == 0) return {true, ""};
    std::string out = r->stdout() + r->stderr();
    if (out.empty())
      out = "command " + Json(strings::join(cmd, " ")).dump() + " exited with " +
            std::to_string(r->exit_code());
    return {false, out};
  }
  return {false, "probe handler not supported"};
}

void Prober::work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto now = SteadyClock::now();
    Probe* due = nullptr;
    auto soonest = now + std::chrono::seconds(1);
    for (auto& [k, p] : probes_) {
      if (p.inFlight) continue;
      if (p.kind == Kind::Startup && p.result) continue;  // done once it has succeeded
      if (p.next <= now) {
        due = &p;
        break;
      }
      soonest = std::min(soonest, p.next);
    }
    if (!due) {
      cv_.wait_until(lock, soonest);
      continue;
    }
    due->inFlight = true;
    Probe copy = *due;
    std::string key = keyOf(copy.containerId, copy.kind);
    // Liveness and readiness wait for the startup probe.
    if (copy.kind != Kind::Startup) {
      auto s = probes_.find(keyOf(copy.containerId, Kind::Startup));
      if (s != probes_.end() && !s->second.result) {
        due->inFlight = false;
        due->next = now + std::chrono::seconds(1);
        continue;
      }
    }
    lock.unlock();
    auto [ok, message] = run(copy);
    lock.lock();
    auto it = probes_.find(key);
    if (it == probes_.end()) continue;
    Probe& p = it->second;
    p.inFlight = false;
    p.next = SteadyClock::now() +
             std::chrono::seconds(std::max<int64_t>(1, json::integer(p.spec, "periodSeconds", 10)));
    bool before = p.result;
    if (ok) {
      p.failures = 0;
      if (++p.successes >= json::integer(p.spec, "successThreshold", 1)) p.result = true;
    } else {
      p.successes = 0;
      if (++p.failures >= json::integer(p.spec, "failureThreshold", 3)) p.result = false;
    }
    std::string podKey = p.podKey, container = p.containerName;
    Kind kind = p.kind;
    bool flipped = before != p.result;
    lock.unlock();
    if (!ok && failed_) failed_(podKey, container, kind, message);
    if (flipped && changed_) changed_(podKey);
    lock.lock();
  }
}

}  // namespace podium::node
