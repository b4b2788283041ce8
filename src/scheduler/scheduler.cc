#include "podium/scheduler/scheduler.h"

#include <map>
#include <mutex>

#include "../controllers/util.h"
#include "podium/api/quantity.h"
#include "podium/api/selectors.h"
#include "podium/client/events.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::scheduler {
namespace {

using client::Informer;
using client::ObjectPtr;
using controllers::at;
using controllers::nameOf;
using controllers::namespaceOf;
using controllers::uidOf;
namespace res = client::resources;

struct Requests {
  int64_t milliCpu = 0;
  int64_t memory = 0;
};

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

bool tolerates(const Json& tolerations, const Json& taint) {
  if (!tolerations.is_array()) return false;
  std::string key = json::str(taint, "key"), value = json::str(taint, "value"),
              effect = json::str(taint, "effect");
  for (const auto& t : tolerations) {
    std::string te = json::str(t, "effect");
    if (!te.empty() && te != effect) continue;
    std::string op = json::str(t, "operator", "Equal");
    std::string tk = json::str(t, "key");
    if (tk.empty() && op == "Exists") return true;
    if (tk != key) continue;
    if (op == "Exists" || json::str(t, "value") == value) return true;
  }
  return false;
}

bool nodeReady(const Json& node) {
  const Json& conds = at(node, {"status", "conditions"});
  if (!conds.is_array()) return false;
  for (const auto& c : conds)
    if (json::str(c, "type") == "Ready") return json::str(c, "status") == "True";
  return false;
}

class SchedulerImpl : public Scheduler {
 public:
  explicit SchedulerImpl(api::Storage& storage)
      : client_(client::newLocalClient(storage, "default-scheduler")),
        informers_(*client_),
        events_(*client_, "default-scheduler"),
        pods_(informers_.informer(res::kPods)),
        nodes_(informers_.informer(res::kNodes)),
        workers_(
            "scheduler", [this](const std::string& k) { return schedule(k); }, 1) {
    pods_.addHandlers(
        {[this](const ObjectPtr& p) { maybeQueue(p); },
         [this](const ObjectPtr& o, const ObjectPtr& n) {
           maybeQueue(n);
           // A pod leaving a node frees room for pending ones.
           if (!json::getString(*o, {"spec", "nodeName"}).empty() && !controllers::isPodActive(*n))
             requeuePending();
         },
         [this](const ObjectPtr& p) {
           forgetAssumed(p);
           if (!json::getString(*p, {"spec", "nodeName"}).empty()) requeuePending();
         }});
    nodes_.addHandlers({[this](const ObjectPtr&) { requeuePending(); },
                        [this](const ObjectPtr& o, const ObjectPtr& n) {
                          if (*o != *n) requeuePending();
                        },
                        nullptr});
    informers_.start();
    informers_.waitForSync(std::chrono::seconds(30));
    workers_.start();
  }
  ~SchedulerImpl() override { stop(); }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    workers_.stop();
    informers_.stop();
  }

 private:
  static bool pending(const Json& pod) {
    return json::getString(pod, {"spec", "nodeName"}).empty() && !controllers::isDeleting(pod) &&
           json::getString(pod, {"spec", "schedulerName"}) == "default-scheduler" &&
           json::getString(pod, {"status", "phase"}) != "Succeeded" &&
           json::getString(pod, {"status", "phase"}) != "Failed";
  }

  void maybeQueue(const ObjectPtr& pod) {
    if (!pending(*pod)) {
      forgetAssumed(pod);
      return;
    }
    workers_.queue().add(Informer::keyOf(*pod));
  }

  void requeuePending() {
    for (const auto& p : pods_.list("", [](const Json& pod) { return pending(pod); }))
      workers_.queue().add(Informer::keyOf(*p));
  }

  void forgetAssumed(const ObjectPtr& pod) {
    std::lock_guard<std::mutex> lock(mu_);
    assumed_.erase(uidOf(*pod));
  }

  // Pods on each node, counting pods bound by this scheduler that the cache has not shown yet.
  std::map<std::string, std::vector<ObjectPtr>> podsByNode() {
    std::map<std::string, std::vector<ObjectPtr>> out;
    std::set<std::string> seen;
    for (const auto& p : pods_.list("")) {
      std::string node = json::getString(*p, {"spec", "nodeName"});
      std::string phase = json::getString(*p, {"status", "phase"});
      if (node.empty() || phase == "Succeeded" || phase == "Failed") continue;
      out[node].push_back(p);
      seen.insert(uidOf(*p));
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = assumed_.begin(); it != assumed_.end();) {
      if (seen.count(it->first)) {
        it = assumed_.erase(it);
        continue;
      }
      out[it->second.first].push_back(it->second.second);
      ++it;
    }
    return out;
  }

  bool schedule(const std::string& key) {
    auto [ns, name] = Informer::splitKey(key);
    ObjectPtr pod = pods_.get(ns, name);
    if (!pod || !pending(*pod)) return true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (assumed_.count(uidOf(*pod))) return true;
    }
    auto byNode = podsByNode();
    Requests want = requestsOf(*pod);
    auto selector = at(*pod, {"spec", "nodeSelector"});
    const Json& tolerations = at(*pod, {"spec", "tolerations"});
    const Json* owner = controllers::controllerOf(*pod);
    std::string ownerUid = owner ? json::str(*owner, "uid") : "";
    std::map<std::string, int> reasons;
    std::string best;
    double bestScore = -1;
    auto nodes = nodes_.list("");
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
      bool tainted = false;
      const Json& taints = at(n, {"spec", "taints"});
      if (taints.is_array())
        for (const auto& t : taints) {
          std::string effect = json::str(t, "effect");
          if ((effect == "NoSchedule" || effect == "NoExecute") && !tolerates(tolerations, t)) {
            ++reasons["node(s) had untolerated taint {" + json::str(t, "key") +
                      (json::str(t, "value").empty() ? "" : ": " + json::str(t, "value")) + "}"];
            tainted = true;
            break;
          }
        }
      if (tainted) continue;
      if (selector.is_object() && !selector.empty()) {
        const Json& labels = at(n, {"metadata", "labels"});
        bool ok = true;
        for (const auto& item : selector.items())
          ok = ok && labels.is_object() && labels.contains(item.key()) &&
               labels[item.key()] == item.value();
        if (!ok) {
          ++reasons["node(s) didn't match Pod's node affinity/selector"];
          continue;
        }
      }
      const Json& alloc = at(n, {"status", "allocatable"});
      int64_t cpuCap = api::milliValue(at(alloc, {"cpu"}));
      int64_t memCap = api::value(at(alloc, {"memory"}));
      int64_t podCap = api::value(at(alloc, {"pods"}));
      Requests used;
      int64_t sameOwner = 0;
      const auto& onNode = byNode[nodeName];
      for (const auto& p : onNode) {
        Requests r = requestsOf(*p);
        used.milliCpu += r.milliCpu;
        used.memory += r.memory;
        const Json* o = controllers::controllerOf(*p);
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
    if (best.empty()) return unschedulable(*pod, nodes.size(), reasons);
    {
      std::lock_guard<std::mutex> lock(mu_);
      Json assumed = *pod;
      assumed["spec"]["nodeName"] = best;
      assumed_[uidOf(*pod)] = {best, std::make_shared<Json>(std::move(assumed))};
    }
    auto bound = client_->bind(ns, name, uidOf(*pod), best);
    if (!bound) {
      forgetAssumed(pod);
      if (bound.error().code() == 404 || bound.error().code() == 409) return true;
      PODIUM_LOG(Warn) << "binding " << key << " to " << best << ": " << bound.error().message();
      return false;
    }
    events_.record(*pod, "Normal", "Scheduled",
                   "Successfully assigned " + ns + "/" + name + " to " + best);
    return true;
  }

  bool unschedulable(const Json& pod, size_t nodeCount, const std::map<std::string, int>& reasons) {
    std::vector<std::string> parts;
    for (const auto& [why, n] : reasons) parts.push_back(std::to_string(n) + " " + why);
    std::string msg =
        std::to_string(nodeCount) + "/" + std::to_string(nodeCount) + " nodes are available";
    msg = "0/" + std::to_string(nodeCount) + " nodes are available" +
          (parts.empty() ? "" : ": " + strings::join(parts, ", ")) + ". preemption: 0/" +
          std::to_string(nodeCount) + " nodes are available: " + std::to_string(nodeCount) +
          " Preemption is not helpful for scheduling.";
    if (nodeCount == 0) msg = "no nodes available to schedule pods";
    Json obj = pod;
    Json& conds = obj["status"]["conditions"];
    std::string now = timefmt::rfc3339(realClock().now());
    bool changed = controllers::setCondition(conds,
                                             {{"type", "PodScheduled"},
                                              {"status", "False"},
                                              {"lastProbeTime", nullptr},
                                              {"reason", "Unschedulable"},
                                              {"message", msg}},
                                             now);
    if (changed) {
      if (auto r = client_->update(res::kPods, namespaceOf(pod), obj, "status"); !r)
        PODIUM_LOG(Debug) << "unschedulable condition: " << r.error().message();
      events_.record(pod, "Warning", "FailedScheduling", msg);
    }
    return false;  // retried with back-off, and at once when nodes or pods change
  }

  client::ClientPtr client_;
  client::InformerFactory informers_;
  client::EventRecorder events_;
  Informer& pods_;
  Informer& nodes_;
  controllers::QueueWorkers workers_;
  std::mutex mu_;                                                     // guards assumed_
  std::map<std::string, std::pair<std::string, ObjectPtr>> assumed_;  // uid -> (node, pod)
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<Scheduler> startScheduler(api::Storage& storage) {
  return std::make_unique<SchedulerImpl>(storage);
}

}  // namespace podium::scheduler
