#include "startup_timeline.h"

#include <cstdio>

namespace podium::node {

namespace {
double seconds(PodTimeline::Time from, PodTimeline::Time to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

void StartupHistograms::Histogram::add(double s) {
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (s <= kBounds[i]) ++buckets[i];
  ++count;
  sum += s;
}

std::string StartupHistograms::observe(const PodTimeline& t) {
  if (!t.seen || !t.sandbox || !t.started || !t.ready) return "";
  PodTimeline::Time arrived = t.arrived.value_or(*t.seen);
  const std::array<double, kStages.size()> d = {
      seconds(arrived, *t.seen), seconds(*t.seen, *t.sandbox), seconds(*t.sandbox, *t.started),
      seconds(*t.started, *t.ready), seconds(arrived, *t.ready)};
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < stages_.size(); ++i) stages_[i].add(d[i]);
    kubeletStart_.add(seconds(arrived, *t.started));
  }
  std::string line;
  for (size_t i = 0; i < stages_.size(); ++i)
    line += std::string(i ? ", " : "") + kStages[i] + " " + number(d[i] * 1000) + " ms";
  return line;
}

std::string StartupHistograms::prometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto render = [](const std::string& name, const std::string& labels, const Histogram& h) {
    std::string out, sep = labels.empty() ? "" : labels + ",";
    for (size_t i = 0; i < kBounds.size(); ++i)
      out += name + "_bucket{" + sep + "le=\"" + number(kBounds[i]) + "\"} " +
             std::to_string(h.buckets[i]) + "\n";
    out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    std::string braces = labels.empty() ? "" : "{" + labels + "}";
    out += name + "_sum" + braces + " " + number(h.sum) + "\n";
    out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
    return out;
  };
  std::string out =
      "# HELP podium_pod_start_stage_seconds Pod start-up on this node by stage: queued (for a pod "
      "worker), sandbox (with its network), containers (all running), ready (reported), total.\n"
      "# TYPE podium_pod_start_stage_seconds histogram\n";
  for (size_t i = 0; i < stages_.size(); ++i)
    out += render("podium_pod_start_stage_seconds", std::string("stage=\"") + kStages[i] + "\"",
                  stages_[i]);
  out +=
      "# HELP kubelet_pod_start_duration_seconds Duration from the node's watch delivering a pod "
      "to its containers running.\n"
      "# TYPE kubelet_pod_start_duration_seconds histogram\n";
  out += render("kubelet_pod_start_duration_seconds", "", kubeletStart_);
  return out;
}

}  // namespace podium::node
