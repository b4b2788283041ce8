#include "podium/scheduler/scheduler.h"

#include <set>

#include "podium/client/objects.h"
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
      nodes_(f.informer(res::kNodes)) {
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (assumed_.count(uid)) return SyncResult::ok();
  }
  auto nodes = nodes_.list("");
  Decision d = choose(*pod, nodes, podsByNode());
  if (d.node.empty()) return unschedulable(*pod, nodes.size(), d.reasons);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Json assumed = *pod;
    assumed["spec"]["nodeName"] = d.node;
    assumed_[uid] = {d.node, std::make_shared<Json>(std::move(assumed))};
  }
  auto bound = client_.bind(ns, name, uid, d.node);
  if (!bound) {
    forgetAssumed(pod);
    // 404: the pod is gone; 409: bound meanwhile (by another scheduler, or a replaced pod).
    return SyncResult::of(bound, "bind " + key + " to " + d.node, {404, 409});
  }
  events_.record(*pod, "Normal", "Scheduled",
                 "Successfully assigned " + ns + "/" + name + " to " + d.node);
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
