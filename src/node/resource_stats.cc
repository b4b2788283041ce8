#include "resource_stats.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "agent_impl.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::node {

namespace {

std::string readAll(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The rate between two samples of one thing, in nanocores (none if time did not move or the
// counter went back: a restarted container).
std::optional<uint64_t> nanoCores(const UsageSample& a, const UsageSample& b) {
  if (b.timeNs <= a.timeNs || b.cpuNs < a.cpuNs) return std::nullopt;
  return static_cast<uint64_t>(static_cast<double>(b.cpuNs - a.cpuNs) * 1e9 /
                               static_cast<double>(b.timeNs - a.timeNs));
}

std::string timeOf(int64_t ns) {
  return timefmt::rfc3339(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns))));
}

Json cpuJson(const UsageSample& s, std::optional<uint64_t> rate) {
  Json j = {{"time", timeOf(s.timeNs)}, {"usageCoreNanoSeconds", s.cpuNs}};
  if (rate) j["usageNanoCores"] = *rate;
  return j;
}

Json memoryJson(const UsageSample& s) {
  return {{"time", timeOf(s.timeNs)}, {"workingSetBytes", s.workingSet}};
}

}  // namespace

std::optional<uint64_t> parseProcStatCpuNs(const std::string& procStat, int64_t clockTicks) {
  std::istringstream in(procStat);
  std::string label;
  if (!(in >> label) || label != "cpu" || clockTicks <= 0) return std::nullopt;
  uint64_t busy = 0, v = 0;
  for (int field = 0; field < 8 && in >> v; ++field)
    if (field != 3 && field != 4) busy += v;  // idle and iowait are not use
  return busy * (1000000000ull / static_cast<uint64_t>(clockTicks));
}

std::optional<uint64_t> parseMeminfoWorkingSet(const std::string& meminfo) {
  std::optional<uint64_t> total, available;
  for (const auto& line : strings::split(meminfo, '\n')) {
    std::istringstream in(line);
    std::string key;
    uint64_t kb = 0;
    if (!(in >> key >> kb)) continue;
    if (key == "MemTotal:") total = kb * 1024;
    if (key == "MemAvailable:") available = kb * 1024;
  }
  if (!total || !available || *available > *total) return std::nullopt;
  return *total - *available;
}

Json buildSummary(const std::string& nodeName, const NodeSample* prevNode, const NodeSample& node,
                  const std::vector<ContainerSample>& prev,
                  const std::vector<ContainerSample>& cur) {
  std::map<std::string, const ContainerSample*> before;
  for (const auto& c : prev) before[c.id] = &c;
  Json out = {{"node",
               {{"nodeName", nodeName},
                {"cpu", cpuJson(node.usage,
                                prevNode ? nanoCores(prevNode->usage, node.usage) : std::nullopt)},
                {"memory", memoryJson(node.usage)}}},
              {"pods", Json::array()}};
  // Pods in the order their first container came; a pod's usage is its containers' sum.
  std::map<std::string, size_t> podIndex;
  struct PodTotal {
    UsageSample usage;
    std::optional<uint64_t> rate = 0;
  };
  std::vector<PodTotal> totals;
  for (const auto& c : cur) {
    auto [it, fresh] = podIndex.emplace(c.podUid, out["pods"].size());
    if (fresh) {
      out["pods"].push_back(
          {{"podRef", {{"name", c.podName}, {"namespace", c.podNamespace}, {"uid", c.podUid}}},
           {"containers", Json::array()}});
      totals.push_back({});
    }
    auto b = before.find(c.id);
    std::optional<uint64_t> rate =
        b == before.end() ? std::nullopt : nanoCores(b->second->usage, c.usage);
    out["pods"][it->second]["containers"].push_back(
        {{"name", c.name}, {"cpu", cpuJson(c.usage, rate)}, {"memory", memoryJson(c.usage)}});
    PodTotal& t = totals[it->second];
    t.usage.timeNs = std::max(t.usage.timeNs, c.usage.timeNs);
    t.usage.cpuNs += c.usage.cpuNs;
    t.usage.workingSet += c.usage.workingSet;
    t.rate = t.rate && rate ? std::optional<uint64_t>(*t.rate + *rate) : std::nullopt;
  }
  for (size_t i = 0; i < totals.size(); ++i) {
    out["pods"][i]["cpu"] = cpuJson(totals[i].usage, totals[i].rate);
    out["pods"][i]["memory"] = memoryJson(totals[i].usage);
  }
  return out;
}

ResourceStats::ResourceStats(CriClient& cri, std::string nodeName, Clock& clock)
    : cri_(cri), nodeName_(std::move(nodeName)), clock_(clock) {}

void ResourceStats::start() {
  thread_ = std::thread([this] { loop(); });
}

void ResourceStats::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

Json ResourceStats::summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!haveNode_) return {{"node", {{"nodeName", nodeName_}}}, {"pods", Json::array()}};
  return buildSummary(nodeName_, havePrevNode_ ? &prevNode_ : nullptr, node_, prev_, cur_);
}

void ResourceStats::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    sample();
    lock.lock();
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

void ResourceStats::sample() {
  auto stats = cri_.listContainerStats();
  int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch()).count();
  std::vector<ContainerSample> cur;
  if (stats) {
    for (const auto& s : *stats) {
      const auto& labels = s.attributes().labels();
      auto label = [&](const char* k) {
        auto it = labels.find(k);
        return it == labels.end() ? std::string() : it->second;
      };
      ContainerSample c{s.attributes().id(), label(kLabelPodNamespace),        label(kLabelPodName),
                        label(kLabelPodUid), s.attributes().metadata().name(), {}};
      if (c.podUid.empty()) continue;
      c.usage.timeNs = s.cpu().timestamp() > 0 ? s.cpu().timestamp() : now;
      c.usage.cpuNs = s.cpu().usage_core_nano_seconds().value();
      c.usage.workingSet = s.memory().working_set_bytes().value();
      cur.push_back(std::move(c));
    }
  } else {
    PODIUM_LOG(Debug) << "container stats: " << stats.error().message;
  }
  NodeSample node;
  node.usage.timeNs = now;
  node.usage.cpuNs = parseProcStatCpuNs(readAll("/proc/stat"), sysconf(_SC_CLK_TCK)).value_or(0);
  node.usage.workingSet = parseMeminfoWorkingSet(readAll("/proc/meminfo")).value_or(0);
  std::lock_guard<std::mutex> lock(mu_);
  if (haveNode_) {
    prevNode_ = node_;
    havePrevNode_ = true;
  }
  node_ = node;
  haveNode_ = true;
  if (stats) {
    prev_ = std::move(cur_);
    cur_ = std::move(cur);
  }
}

}  // namespace podium::node
