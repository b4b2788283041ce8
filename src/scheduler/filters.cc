#include "filters.h"

#include "podium/api/quantity.h"
#include "podium/client/objects.h"
#include "podium/client/volumes.h"
#include "podium/common/strings.h"

namespace podium::scheduler {

using client::at;
using client::nameOf;
using client::ObjectPtr;

Requests requestsOf(const Json& pod) {
  Requests r;
  auto add = [&](const Json& containers, bool maxOnly) {
    if (!containers.is_array()) return;
    for (const auto& c : containers) {
      const Json& req = at(c, {"resources", "requests"});
      int64_t cpu = api::milliValue(at(req, {"cpu"}));
      int64_t mem = api::value(at(req, {"memory"}));
      if (maxOnly) {
        r.milliCpu = std::max(r.milliCpu, cpu);
        r.memory = std::max(r.memory, mem);
      } else {
        r.milliCpu += cpu;
        r.memory += mem;
      }
    }
  };
  add(at(pod, {"spec", "containers"}), false);
  Requests init;
  std::swap(r, init);
  add(at(pod, {"spec", "initContainers"}), true);
  std::swap(r, init);
  r.milliCpu = std::max(r.milliCpu, init.milliCpu);
  r.memory = std::max(r.memory, init.memory);
  return r;
}

bool nodeReady(const Json& node) {
  const Json& conds = at(node, {"status", "conditions"});
  if (!conds.is_array()) return false;
  for (const auto& c : conds)
    if (json::str(c, "type") == "Ready") return json::str(c, "status") == "True";
  return false;
}

namespace {
const std::vector<ObjectPtr>& byNodeOrEmpty(
    const std::map<std::string, std::vector<ObjectPtr>>& podsByNode, const std::string& node) {
  static const std::vector<ObjectPtr> kNone;
  auto it = podsByNode.find(node);
  return it == podsByNode.end() ? kNone : it->second;
}
}  // namespace

namespace {
// The volume binding filter's verdict on one node: "" when every claim can be had there.
std::string volumeProblem(const PodVolumes& volumes, const Json& node) {
  for (const auto& c : volumes.claims) {
    if (c.volume) {
      if (!client::volumes::volumeAdmitsNode(*c.volume, node))
        return "node(s) had volume node affinity conflict";
      continue;
    }
    if (c.provisionable) continue;
    bool found = false;
    for (const auto& pv : volumes.freeVolumes)
      if (client::volumes::volumeFitsClaim(*pv, *c.claim) &&
          client::volumes::volumeAdmitsNode(*pv, node)) {
        found = true;
        break;
      }
    if (!found) return "node(s) didn't find available persistent volumes to bind";
  }
  return "";
}
}  // namespace

Decision choose(const Json& pod, const std::vector<ObjectPtr>& nodes,
                const std::map<std::string, std::vector<ObjectPtr>>& podsByNode,
                const PodVolumes& volumes) {
  Requests want = requestsOf(pod);
  const Json& tolerations = at(pod, {"spec", "tolerations"});
  const Json* owner = client::controllerOf(pod);
  std::string ownerUid = owner ? json::str(*owner, "uid") : "";
  Decision d;
  std::map<std::string, int>& reasons = d.reasons;
  if (!volumes.problem.empty()) {
    reasons[volumes.problem] = static_cast<int>(nodes.size());
    return d;
  }
  std::string best;
  double bestScore = -1;
  for (const auto& node : nodes) {
    const Json& n = *node;
    std::string nodeName = nameOf(n);
    if (!nodeReady(n)) {
      ++reasons["node(s) were not ready"];
      continue;
    }
    if (json::boolean(at(n, {"spec"}), "unschedulable")) {
      ++reasons["node(s) were unschedulable"];
      continue;
    }
    if (const Json* t = client::untoleratedTaint(tolerations, n)) {
      ++reasons["node(s) had untolerated taint {" + json::str(*t, "key") +
                (json::str(*t, "value").empty() ? "" : ": " + json::str(*t, "value")) + "}"];
      continue;
    }
    if (!client::podFitsNode(at(pod, {"spec"}), n)) {
      ++reasons["node(s) didn't match Pod's node affinity/selector"];
      continue;
    }
    if (std::string why = volumeProblem(volumes, n); !why.empty()) {
      ++reasons[why];
      continue;
    }
    const Json& alloc = at(n, {"status", "allocatable"});
    int64_t cpuCap = api::milliValue(at(alloc, {"cpu"}));
    int64_t memCap = api::value(at(alloc, {"memory"}));
    int64_t podCap = api::value(at(alloc, {"pods"}));
    Requests used;
    int64_t sameOwner = 0;
    const auto& onNode = byNodeOrEmpty(podsByNode, nodeName);
    for (const auto& p : onNode) {
      Requests r = requestsOf(*p);
      used.milliCpu += r.milliCpu;
      used.memory += r.memory;
      const Json* o = client::controllerOf(*p);
      if (!ownerUid.empty() && o && json::str(*o, "uid") == ownerUid) ++sameOwner;
    }
    bool fits = true;
    if (podCap > 0 && static_cast<int64_t>(onNode.size()) + 1 > podCap) {
      ++reasons["Too many pods"];
      fits = false;
    }
    if (want.milliCpu > 0 && used.milliCpu + want.milliCpu > cpuCap) {
      ++reasons["Insufficient cpu"];
      fits = false;
    }
    if (want.memory > 0 && used.memory + want.memory > memCap) {
      ++reasons["Insufficient memory"];
      fits = false;
    }
    if (!fits) continue;
    double cpuFree = cpuCap > 0 ? 1.0 - static_cast<double>(used.milliCpu + want.milliCpu) /
                                            static_cast<double>(cpuCap)
                                : 0;
    double memFree = memCap > 0 ? 1.0 - static_cast<double>(used.memory + want.memory) /
                                            static_cast<double>(memCap)
                                : 0;
    double score = 50.0 * (cpuFree + memFree) + 100.0 / (1.0 + static_cast<double>(sameOwner));
    if (score > bestScore || (score == bestScore && nodeName < best)) {
      bestScore = score;
      best = nodeName;
    }
  }
  d.node = best;
  return d;
}

std::string unschedulableMessage(size_t nodeCount, const std::map<std::string, int>& reasons) {
  if (nodeCount == 0) return "no nodes available to schedule pods";
  std::vector<std::string> parts;
  for (const auto& [why, n] : reasons) parts.push_back(std::to_string(n) + " " + why);
  return "0/" + std::to_string(nodeCount) + " nodes are available" +
         (parts.empty() ? "" : ": " + strings::join(parts, ", ")) + ". preemption: 0/" +
         std::to_string(nodeCount) + " nodes are available: " + std::to_string(nodeCount) +
         " Preemption is not helpful for scheduling.";
}

}  // namespace podium::scheduler
