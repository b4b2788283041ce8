#include "podium/client/controller.h"

#include "podium/client/objects.h"
#include "podium/common/log.h"

namespace podium::client {

Controller::Controller(std::string name, Client& client, Clock& clock, int workers)
    : client_(client),
      clock_(clock),
      name_(std::move(name)),
      workers_(workers),
      queue_(std::chrono::milliseconds(5), std::chrono::seconds(300), clock) {}

Controller::~Controller() {
  if (!threads_.empty()) PODIUM_LOG(Error) << name_ << ": destroyed while running (stop it first)";
  stop();
}

void Controller::start() {
  for (int i = 0; i < workers_; ++i)
    threads_.emplace_back([this] {
      std::string key;
      while (queue_.get(&key)) {
        (void)process(key);
        queue_.done(key);
      }
    });
}

void Controller::stop() {
  queue_.shutdown();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

SyncResult Controller::process(const std::string& key) {
  SyncResult r = SyncResult::ok();
  try {
    r = sync(key);
  } catch (const std::exception& e) {
    r = SyncResult::retry(std::string("sync threw: ") + e.what());
  }
  if (r.failed()) {
    PODIUM_LOG(Debug) << name_ << ": " << key << ": " << r.reason() << " (retry "
                      << queue_.retries(key) + 1 << ")";
    queue_.addRateLimited(key);
  } else {
    queue_.forget(key);
  }
  if (r.requeueAfter()) queue_.addAfter(key, *r.requeueAfter());
  return r;
}

EventHandlers Controller::enqueueHandlers(bool onDelete) {
  EventHandlers h;
  h.onAdd = [this](const ObjectPtr& o) { enqueue(*o); };
  h.onUpdate = [this](const ObjectPtr&, const ObjectPtr& n) { enqueue(*n); };
  if (onDelete) h.onDelete = [this](const ObjectPtr& o) { enqueue(*o); };
  return h;
}

SyncResult Controller::updateStatus(const Resource& r, const Json& obj, const Json& status) {
  const Json* current = json::find(obj, {"status"});
  if (current && *current == status) return SyncResult::ok();
  Json next = obj;
  next["status"] = status;
  auto written = client_.update(r, namespaceOf(obj), next, "status");
  return SyncResult::of(written, "status of " + r.plural + " " + Informer::keyOf(obj));
}

ControllerRefManager::ControllerRefManager(Client& client, Resource ownerResource,
                                           const Json& owner, Resource childResource,
                                           api::LabelSelector selector)
    : client_(client),
      ownerResource_(std::move(ownerResource)),
      childResource_(std::move(childResource)),
      owner_(owner),
      selector_(std::move(selector)) {}

ControllerRefManager::Claim ControllerRefManager::claim(const std::vector<ObjectPtr>& candidates) {
  Claim out;
  std::string uid = uidOf(owner_);
  for (const auto& child : candidates) {
    const Json* ref = controllerOf(*child);
    bool matches = !selector_.empty() && selector_.matches(at(*child, {"metadata", "labels"}));
    if (ref) {
      if (json::str(*ref, "uid") != uid) continue;  // another controller's
      if (matches) {
        out.owned.push_back(child);
      } else if (!isDeleting(owner_)) {
        out.result.merge(release(*child));
      }
      continue;
    }
    if (!matches || isDeleting(owner_) || isDeleting(*child)) continue;
    if (!ownerStillAdopting()) continue;
    auto adopted = adopt(*child);
    if (adopted)
      out.owned.push_back(std::make_shared<const Json>(std::move(*adopted)));
    else
      out.result.merge(
          SyncResult::of(adopted, "adopt " + childResource_.plural + " " + nameOf(*child)));
  }
  return out;
}

bool ControllerRefManager::ownerStillAdopting() {
  if (!canAdopt_) {
    // The cache may be behind: an owner already being deleted must not adopt (Kubernetes'
    // RecheckDeletionTimestamp reads it from the API server once).
    auto fresh = client_.get(ownerResource_, namespaceOf(owner_), nameOf(owner_));
    canAdopt_ = fresh && uidOf(*fresh) == uidOf(owner_) && !isDeleting(*fresh);
  }
  return *canAdopt_;
}

Result ControllerRefManager::adopt(const Json& child) {
  Json refs = at(child, {"metadata", "ownerReferences"}).is_array()
                  ? at(child, {"metadata", "ownerReferences"})
                  : Json::array();
  refs.push_back(controllerRef(owner_));
  return client_.patch(
      childResource_, namespaceOf(child), nameOf(child),
      {{"metadata", {{"ownerReferences", refs}, {"resourceVersion", resourceVersionOf(child)}}}});
}

SyncResult ControllerRefManager::release(const Json& child) {
  std::string uid = uidOf(owner_);
  Json refs = Json::array();
  for (const auto& r : at(child, {"metadata", "ownerReferences"}))
    if (json::str(r, "uid") != uid) refs.push_back(r);
  auto r = client_.patch(
      childResource_, namespaceOf(child), nameOf(child),
      {{"metadata", {{"ownerReferences", refs}, {"resourceVersion", resourceVersionOf(child)}}}});
  // Gone, or no longer ours to release (a uid that no longer matches is refused as invalid).
  return SyncResult::of(r, "release " + childResource_.plural + " " + nameOf(child), {404, 422});
}

}  // namespace podium::client
