#include "usage_store.h"

namespace podium::metrics {

namespace {

// usageNanoCores and workingSetBytes of a Summary entry; nullopt without a CPU rate.
std::optional<std::pair<uint64_t, uint64_t>> usageOf(const Json& entry) {
  const Json* cpu = json::find(entry, {"cpu", "usageNanoCores"});
  if (!cpu || !cpu->is_number()) return std::nullopt;
  const Json* mem = json::find(entry, {"memory", "workingSetBytes"});
  return std::make_pair(cpu->get<uint64_t>(),
                        mem && mem->is_number() ? mem->get<uint64_t>() : uint64_t{0});
}

double number(const Json& obj, const char* key) {
  const Json* v = json::find(obj, {key});
  return v && v->is_number() ? v->get<double>() : 0;
}

}  // namespace

UsageStore::UsageStore(std::chrono::milliseconds rateWindow, std::chrono::milliseconds staleAfter)
    : rateWindow_(rateWindow), staleAfter_(staleAfter) {}

void UsageStore::addSummary(const std::string& node, const Json& summary, TimePoint at) {
  std::optional<NodeUsage> usage;
  if (const Json* n = json::find(summary, {"node"}))
    if (auto u = usageOf(*n))
      usage = NodeUsage{json::getString(*n, {"cpu", "time"}), u->first, u->second};
  std::map<std::string, PodUsage> pods;
  if (const Json* list = json::find(summary, {"pods"}); list && list->is_array())
    for (const auto& p : *list) {
      const Json* containers = json::find(p, {"containers"});
      if (!containers || !containers->is_array() || containers->empty()) continue;
      PodUsage pu;
      bool complete = true;
      for (const auto& c : *containers) {
        auto u = usageOf(c);
        if (!u) {
          complete = false;
          break;
        }
        if (pu.timestamp.empty()) pu.timestamp = json::getString(c, {"cpu", "time"});
        pu.containers.push_back({json::str(c, "name"), u->first, u->second});
      }
      if (!complete) continue;
      pods[json::getString(p, {"podRef", "namespace"}) + "/" +
           json::getString(p, {"podRef", "name"})] = std::move(pu);
    }
  std::lock_guard<std::mutex> lock(mu_);
  NodeState& s = nodes_[node];
  s.summaryAt = at;
  s.usage = std::move(usage);
  s.pods = std::move(pods);
}

void UsageStore::addMesh(const std::string& node, const Json& mesh, TimePoint at) {
  MeshSample sample{at, {}};
  if (const Json* pods = json::find(mesh, {"pods"}); pods && pods->is_object())
    for (const auto& [key, v] : pods->items())
      sample.pods[key] = {number(v, "requests"), number(v, "durationMsSum")};
  std::lock_guard<std::mutex> lock(mu_);
  auto& history = nodes_[node].mesh;
  history.push_back(std::move(sample));
  // Keep what the window needs: the newest sample at least a window older than the latest.
  while (history.size() > 2 && history.back().at - history[1].at >= rateWindow_)
    history.pop_front();
}

void UsageStore::forgetNode(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_.erase(node);
}

std::optional<NodeUsage> UsageStore::node(const std::string& name, TimePoint now) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end() || !fresh(it->second.summaryAt, now)) return std::nullopt;
  return it->second.usage;
}

std::optional<PodUsage> UsageStore::pod(const std::string& ns, const std::string& name,
                                        TimePoint now) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = ns + "/" + name;
  for (const auto& [n, s] : nodes_) {
    if (!fresh(s.summaryAt, now)) continue;
    auto it = s.pods.find(key);
    if (it != s.pods.end()) return it->second;
  }
  return std::nullopt;
}

std::optional<RequestRate> UsageStore::requests(const std::string& ns, const std::string& pod,
                                                TimePoint now) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = ns + "/" + pod;
  std::optional<RequestRate> out;
  for (const auto& [n, s] : nodes_) {
    if (s.mesh.size() < 2 || !fresh(s.mesh.back().at, now)) continue;
    const MeshSample& latest = s.mesh.back();
    // The base: the newest sample at least a window before the latest, else the oldest.
    const MeshSample* base = &s.mesh.front();
    for (const auto& m : s.mesh)
      if (latest.at - m.at >= rateWindow_) base = &m;
    double seconds = std::chrono::duration<double>(latest.at - base->at).count();
    if (seconds <= 0) continue;
    if (!out) out = RequestRate{};
    out->windowSeconds = std::max(out->windowSeconds, seconds);
    auto now_ = latest.pods.find(key);
    if (now_ == latest.pods.end()) continue;
    auto then = base->pods.find(key);
    double requests = now_->second.first - (then == base->pods.end() ? 0 : then->second.first);
    double ms = now_->second.second - (then == base->pods.end() ? 0 : then->second.second);
    if (requests < 0 || ms < 0) continue;  // the proxy restarted: its counters began again
    out->perSecond += requests / seconds;
    out->requests += requests;
    out->durationMsSum += ms;
  }
  return out;
}

}  // namespace podium::metrics
