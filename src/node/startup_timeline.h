// Pod start-up as the agent sees it, stage by stage, for the pods whose sandbox it makes:
// arrived (the agent's watch delivered the new pod) → seen (a pod worker's first sync of it:
// the wait is the worker pool's queue) → sandbox (the runtime's sandbox with its network, CNI
// included) → started (every regular container running) → ready (the agent reported Ready).
// Each finished start adds one observation per stage to Prometheus histograms
// (podium_pod_start_stage_seconds{stage="queued|sandbox|containers|ready|total"}), served on the
// node's /metrics beside what the kubelet calls kubelet_pod_start_duration_seconds (here:
// arrived → running containers), and logged at debug level.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace podium::node {

struct PodTimeline {
  using Time = std::chrono::steady_clock::time_point;
  std::optional<Time> arrived, seen, sandbox, started, ready;
};

class StartupHistograms {
 public:
  static constexpr std::array<double, 10> kBounds = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  // Adds a finished timeline (seen, sandbox, started and ready all set; arrived defaults to
  // seen); others are ignored.
  // Returns the durations as a log line ("" when ignored).
  std::string observe(const PodTimeline& t);
  // The histograms in Prometheus' text format.
  std::string prometheus() const;

 private:
  struct Histogram {
    std::array<uint64_t, kBounds.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
    void add(double seconds);
  };
  static constexpr std::array<const char*, 5> kStages = {"queued", "sandbox", "containers", "ready",
                                                         "total"};
  mutable std::mutex mu_;
  std::array<Histogram, kStages.size()> stages_;
  Histogram kubeletStart_;  // arrived → containers running
};

}  // namespace podium::node
