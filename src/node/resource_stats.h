#pragma once

// The node's resource usage, as the kubelet's Summary API (`GET /stats/summary`) reports it and
// metrics-server reads it: CPU (cumulative core-nanoseconds and the rate over the last interval,
// in nanocores) and memory working set, for the node and for each container of each pod.
// Containers come from the runtime's CRI ListContainerStats, the node from /proc/stat and
// /proc/meminfo; a sample is taken every second, and rates are over the last two samples.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cri_client.h"
#include "podium/common/json.h"
#include "podium/common/time.h"

namespace podium::node {

struct UsageSample {
  int64_t timeNs = 0;       // when it was read (wall clock)
  uint64_t cpuNs = 0;       // CPU time used so far, in core-nanoseconds
  uint64_t workingSet = 0;  // bytes
};

struct ContainerSample {
  std::string id, podNamespace, podName, podUid, name;
  UsageSample usage;
};

struct NodeSample {
  UsageSample usage;
};

// CPU time of the machine from /proc/stat's "cpu" line (all but idle and iowait), in
// core-nanoseconds; nullopt when unreadable.
std::optional<uint64_t> parseProcStatCpuNs(const std::string& procStat, int64_t clockTicks);
// Working set from /proc/meminfo: MemTotal - MemAvailable, in bytes.
std::optional<uint64_t> parseMeminfoWorkingSet(const std::string& meminfo);

// The Summary API document from two rounds of samples (`prev` may be empty: rates are then
// left out, as the kubelet does before it has two).
Json buildSummary(const std::string& nodeName, const NodeSample* prevNode, const NodeSample& node,
                  const std::vector<ContainerSample>& prev,
                  const std::vector<ContainerSample>& cur);

class ResourceStats {
 public:
  ResourceStats(CriClient& cri, std::string nodeName, Clock& clock);
  ~ResourceStats() { stop(); }
  void start();
  void stop();
  // The latest summary (an empty node entry until the first sample).
  Json summary() const;

 private:
  void loop();
  void sample();

  CriClient& cri_;
  std::string nodeName_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  bool haveNode_ = false, havePrevNode_ = false;
  NodeSample prevNode_, node_;
  std::vector<ContainerSample> prev_, cur_;
};

}  // namespace podium::node
