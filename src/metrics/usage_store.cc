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
  MeshSample sample{at, {}, {}, {}};
  if (const Json* pods = json::find(mesh, {"pods"}); pods && pods->is_object())
    for (const auto& [key, v] : pods->items())
      sample.pods[key] = {number(v, "requests"), number(v, "durationMsSum")};
  if (const Json* bounds = json::find(mesh, {"bounds"}); bounds && bounds->is_array())
    for (const auto& b : *bounds)
      if (b.is_number()) sample.bounds.push_back(b.get<double>());
  if (const Json* edges = json::find(mesh, {"edges"}); edges && edges->is_array())
    for (const auto& e : *edges) {
      EdgeCount c;
      c.id = {{"source", json::str(e, "source")},
              {"sourceNamespace", json::str(e, "sourceNamespace")},
              {"service", json::str(e, "service")},
              {"serviceNamespace", json::str(e, "serviceNamespace")},
              {"workload", json::str(e, "workload")},
              {"version", json::str(e, "version")},
              {"mtls", json::boolean(e, "mtls")}};
      c.requests = number(e, "requests");
      c.errors = number(e, "errors");
      if (const Json* b = json::find(e, {"buckets"}); b && b->is_array())
        for (const auto& n : *b) c.buckets.push_back(n.is_number() ? n.get<double>() : 0);
      sample.edges[json::dump(c.id)] = std::move(c);
    }
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

std::pair<const UsageStore::MeshSample*, const UsageStore::MeshSample*> UsageStore::window(
    const NodeState& s, TimePoint now) const {
  if (s.mesh.size() < 2 || !fresh(s.mesh.back().at, now)) return {nullptr, nullptr};
  const MeshSample* base = &s.mesh.front();
  for (const auto& m : s.mesh)
    if (s.mesh.back().at - m.at >= rateWindow_) base = &m;
  return {&s.mesh.back(), base};
}

namespace {

// Prometheus' histogram_quantile: the bucket the rank falls in, linearly within it.
double quantile(double q, const std::vector<double>& counts, const std::vector<double>& bounds) {
  double total = counts.empty() ? 0 : counts.back();
  if (total <= 0) return 0;
  double rank = q * total, below = 0, lower = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    double upper = i < bounds.size() ? bounds[i] : lower;
    if (counts[i] >= rank) {
      double inBucket = counts[i] - below;
      return inBucket > 0 ? lower + (upper - lower) * (rank - below) / inBucket : upper;
    }
    below = counts[i];
    lower = upper;
  }
  return lower;
}

}  // namespace

std::vector<EdgeRate> UsageStore::edges(TimePoint now) const {
  struct Sum {
    Json id;
    double perSecond = 0, requests = 0, errors = 0;
    std::vector<double> buckets;
    std::vector<double> bounds;
  };
  std::map<std::string, Sum> sums;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [n, s] : nodes_) {
    auto [latest, base] = window(s, now);
    if (!latest) continue;
    double seconds = std::chrono::duration<double>(latest->at - base->at).count();
    if (seconds <= 0) continue;
    for (const auto& [k, e] : latest->edges) {
      auto then = base->edges.find(k);
      double requests = e.requests - (then == base->edges.end() ? 0 : then->second.requests);
      if (requests <= 0) continue;  // idle, or the proxy restarted
      Sum& sum = sums[k];
      sum.id = e.id;
      sum.perSecond += requests / seconds;
      sum.requests += requests;
      sum.errors += e.errors - (then == base->edges.end() ? 0 : then->second.errors);
      sum.buckets.resize(e.buckets.size());
      for (size_t i = 0; i < e.buckets.size(); ++i)
        sum.buckets[i] +=
            e.buckets[i] - (then == base->edges.end() || i >= then->second.buckets.size()
                                ? 0
                                : then->second.buckets[i]);
      sum.bounds = latest->bounds;
    }
  }
  std::vector<EdgeRate> out;
  for (auto& [k, s] : sums)
    out.push_back({s.id, s.perSecond, s.requests > 0 ? std::max(0.0, s.errors) / s.requests : 0,
                   quantile(0.95, s.buckets, s.bounds), quantile(0.99, s.buckets, s.bounds),
                   s.requests});
  return out;
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
