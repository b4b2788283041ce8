#include "podium/scheduler/scheduler.h"

#include <set>

#include "podium/client/objects.h"
#include "podium/client/volumes.h"
#include "podium/common/log.h"
#include "podium/common/time.h"
#include "scheduler_impl.h"

namespace podium::scheduler {

using client::Informer;
using client::ObjectPtr;
using client::SyncResult;
namespace res = client::resources;

SchedulerController::SchedulerController(client::InformerFactory& f, client::EventRecorder& events)
    : Controller("scheduler", f.client(), f.clock(), 1),
      events_(events),
      pods_(f.informer(res::kPods)),
      nodes_(f.informer(res::kNodes)),
      claims_(f.informer(res::kPersistentVolumeClaims)),
      volumes_(f.informer(res::kPersistentVolumes)),
      classes_(f.informer(res::kStorageClasses)) {
  pods_.addHandlers(
      {[this](const ObjectPtr& p) { maybeQueue(p); },
       [this](const ObjectPtr& o, const ObjectPtr& n) {
         maybeQueue(n);
         // A pod leaving a node frees room for pending ones.
         if (!json::getString(*o, {"spec", "nodeName"}).empty() && !client::isPodActive(*n))
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
  // A claim made, bound or freed may let a waiting pod on.
  auto volumesChanged = [this](const ObjectPtr&) { requeuePending(); };
  for (client::Informer* i : {&claims_, &volumes_})
    i->addHandlers({volumesChanged,
                    [volumesChanged](const ObjectPtr&, const ObjectPtr& n) { volumesChanged(n); },
                    nullptr});
}

PodVolumes SchedulerController::volumesOf(const Json& pod) {
  PodVolumes out;
  std::string ns = client::namespaceOf(pod);
  bool unbound = false;
  for (const auto& name : client::volumes::claimsOf(pod)) {
    ClaimInfo c;
    c.claim = claims_.get(ns, name);
    if (!c.claim) {
      out.problem = "persistentvolumeclaim \"" + name + "\" not found";
      return out;
    }
    if (client::isDeleting(*c.claim)) {
      out.problem = "persistentvolumeclaim \"" + name + "\" is being deleted";
      return out;
    }
    std::string volume = json::getString(*c.claim, {"spec", "volumeName"});
    if (!volume.empty()) {
      c.volume = volumes_.get("", volume);
      if (!c.volume) {
        out.problem = "pvc " + name + " bound to non-existent pv " + volume;
        return out;
      }
    } else {
      ObjectPtr sc = classes_.get("", client::volumes::claimClass(*c.claim));
      if (!sc || json::str(*sc, "volumeBindingMode") != "WaitForFirstConsumer") {
        out.problem = "pod has unbound immediate PersistentVolumeClaims";
        return out;
      }
      c.provisionable = json::str(*sc, "provisioner") != "kubernetes.io/no-provisioner";
      unbound = true;
    }
    out.claims.push_back(std::move(c));
  }
  if (unbound)
    for (const auto& pv : volumes_.list(""))
      if (!client::isDeleting(*pv) && (client::at(*pv, {"spec", "claimRef"}).is_object() ||
                                       json::getString(*pv, {"status", "phase"}) == "Available"))
        out.freeVolumes.push_back(pv);
  return out;
}

Expected<bool, std::string> SchedulerController::volumesBound(const PodVolumes& volumes,
                                                              const std::string& node) {
  bool bound = true;
  for (const auto& c : volumes.claims) {
    if (c.volume) continue;
    bound = false;
    const Json& claim = *c.claim;
    if (json::getString(claim, {"metadata", "annotations", client::volumes::kSelectedNode}) == node)
      continue;
    auto patched = client_.patch(
        res::kPersistentVolumeClaims, client::namespaceOf(claim), client::nameOf(claim),
        {{"metadata", {{"annotations", {{client::volumes::kSelectedNode, node}}}}}});
    if (!patched)
      return Unexpected("select node for claim " + client::nameOf(claim) + ": " +
                        patched.error().message());
  }
  return bound;
}

bool SchedulerController::pending(const Json& pod) {
  std::string phase = json::getString(pod, {"status", "phase"});
  return json::getString(pod, {"spec", "nodeName"}).empty() && !client::isDeleting(pod) &&
         json::getString(pod, {"spec", "schedulerName"}) == "default-scheduler" &&
         phase != "Succeeded" && phase != "Failed";
}

void SchedulerController::maybeQueue(const ObjectPtr& pod) {
  if (!pending(*pod)) {
    forgetAssumed(pod);
    return;
  }
  enqueue(*pod);
}

void SchedulerController::requeuePending() {
  for (const auto& p : pods_.list("", [](const Json& pod) { return pending(pod); })) enqueue(*p);
}

void SchedulerController::forgetAssumed(const ObjectPtr& pod) {
  std::lock_guard<std::mutex> lock(mu_);
  assumed_.erase(client::uidOf(*pod));
}

std::map<std::string, std::vector<ObjectPtr>> SchedulerController::podsByNode() {
  std::map<std::string, std::vector<ObjectPtr>> out;
  std::set<std::string> seen;
  for (const auto& p : pods_.list("")) {
    std::string node = json::getString(*p, {"spec", "nodeName"});
    std::string phase = json::getString(*p, {"status", "phase"});
    if (node.empty() || phase == "Succeeded" || phase == "Failed") continue;
    out[node].push_back(p);
    seen.insert(client::uidOf(*p));
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

SyncResult SchedulerController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr pod = pods_.get(ns, name);
  if (!pod || !pending(*pod)) return SyncResult::ok();
  std::string uid = client::uidOf(*pod);
  std::string node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = assumed_.find(uid); it != assumed_.end()) node = it->second.first;
  }
  PodVolumes volumes = volumesOf(*pod);
  if (!node.empty() && volumes.claims.empty()) return SyncResult::ok();  // bound already
  if (node.empty()) {
    auto nodes = nodes_.list("");
    Decision d = choose(*pod, nodes, podsByNode(), volumes);
    if (d.node.empty()) return unschedulable(*pod, nodes.size(), d.reasons);
    node = d.node;
    std::lock_guard<std::mutex> lock(mu_);
    Json assumed = *pod;
    assumed["spec"]["nodeName"] = node;
    assumed_[uid] = {node, std::make_shared<Json>(std::move(assumed))};
  }
  // Kubernetes' PreBind: the pod waits (assumed on its node) until its claims are bound there.
  auto ready = volumesBound(volumes, node);
  if (!ready) {
    forgetAssumed(pod);
    return SyncResult::retry(ready.error());
  }
  if (!*ready) return SyncResult::after(std::chrono::seconds(1));  // claim changes come sooner
  auto bound = client_.bind(ns, name, uid, node);
  if (!bound) {
    forgetAssumed(pod);
    // 404: the pod is gone; 409: bound meanwhile (by another scheduler, or a replaced pod).
    return SyncResult::of(bound, "bind " + key + " to " + node, {404, 409});
  }
  events_.record(*pod, "Normal", "Scheduled",
                 "Successfully assigned " + ns + "/" + name + " to " + node);
  return SyncResult::ok();
}

SyncResult SchedulerController::unschedulable(const Json& pod, size_t nodeCount,
                                              const std::map<std::string, int>& reasons) {
  std::string msg = unschedulableMessage(nodeCount, reasons);
  Json status = client::at(pod, {"status"}).is_object() ? pod["status"] : Json::object();
  bool changed = client::setCondition(status["conditions"],
                                      {{"type", "PodScheduled"},
                                       {"status", "False"},
                                       {"lastProbeTime", nullptr},
                                       {"reason", "Unschedulable"},
                                       {"message", msg}},
                                      timefmt::rfc3339(clock_.now()));
  SyncResult result = SyncResult::retry(msg);  // with back-off, and at once when nodes change
  if (changed) {
    result.merge(updateStatus(res::kPods, pod, status));
    events_.record(pod, "Warning", "FailedScheduling", msg);
  }
  return result;
}

namespace {

class SchedulerImpl : public Scheduler {
 public:
  SchedulerImpl(client::Client& client, Clock& clock)
      : informers_(client, std::chrono::seconds(30), clock),
        events_(client, "default-scheduler", "", clock),
        controller_(informers_, events_) {
    informers_.start();
    if (!informers_.waitForSync(std::chrono::seconds(30)))
      PODIUM_LOG(Warn) << "scheduler caches did not sync in 30s";
    controller_.start();
  }
  ~SchedulerImpl() override { stop(); }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    controller_.stop();
    informers_.stop();
  }

 private:
  client::InformerFactory informers_;
  client::EventRecorder events_;
  SchedulerController controller_;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<Scheduler> startScheduler(client::Client& client, Clock& clock) {
  return std::make_unique<SchedulerImpl>(client, clock);
}

}  // namespace podium::scheduler
