// The in-process client: every call goes straight to api::Storage, so controllers in the
// server pay no serialisation or network cost but still pass through all of the API's rules.
#include <condition_variable>
#include <mutex>

#include "podium/api/storage.h"
#include "podium/client/local_client.h"

namespace podium::client {
namespace {

using api::ApiError;

class LocalWatch : public Watch {
 public:
  LocalWatch(api::Storage& storage, api::WatchHandle handle)
      : storage_(storage), handle_(std::move(handle)), signal_(std::make_shared<Signal>()) {
    // The wake-up may run on the store's thread while this watch is being destroyed, so it
    // only touches shared state that outlives both.
    handle_.watcher->setWakeup([signal = signal_] {
      std::lock_guard<std::mutex> lock(signal->mu);
      signal->signalled = true;
      signal->cv.notify_all();
    });
  }
  ~LocalWatch() override { storage_.stopWatch(handle_); }

  bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) override {
    {
      std::unique_lock<std::mutex> lock(signal_->mu);
      signal_->cv.wait_for(lock, timeout, [&] { return signal_->signalled || signal_->stopped; });
      signal_->signalled = false;
      if (signal_->stopped) return false;
    }
    std::vector<api::CacheWatcher::Event> events;
    bool open = handle_.watcher->drain(events);
    for (auto& e : events) {
      EventType t = e.type == api::WatchEventType::Added      ? EventType::Added
                    : e.type == api::WatchEventType::Modified ? EventType::Modified
                                                              : EventType::Deleted;
      out.push_back(Event{t, handle_.convert(e.object)});
    }
    return open;
  }

  void stop() override {
    std::lock_guard<std::mutex> lock(signal_->mu);
    signal_->stopped = true;
    signal_->cv.notify_all();
  }

 private:
  struct Signal {
    std::mutex mu;  // guards signalled, stopped
    std::condition_variable cv;
    bool signalled = true;  // drain once at start: the initial events are already queued
    bool stopped = false;
  };
  api::Storage& storage_;
  api::WatchHandle handle_;
  std::shared_ptr<Signal> signal_;
};

class LocalClient : public Client {
 public:
  LocalClient(api::Storage& storage, std::string manager)
      : storage_(storage), manager_(std::move(manager)) {}

  Result get(const Resource& r, const std::string& ns, const std::string& name) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    auto obj = storage_.get(**info, ns, name);
    if (!obj) return Unexpected(obj.error());
    return **obj;
  }

  Expected<ObjectPtr, ApiError> getShared(const Resource& r, const std::string& ns,
                                          const std::string& name) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    auto obj = storage_.get(**info, ns, name);
    if (!obj) return Unexpected(obj.error());
    return ObjectPtr(*obj);
  }

  Expected<List, ApiError> list(const Resource& r, const std::string& ns,
                                const ListOptions& o) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    api::ListOptions lo;
    lo.labelSelector = o.labelSelector;
    lo.fieldSelector = o.fieldSelector;
    auto res = storage_.list(**info, ns, lo);
    if (!res) return Unexpected(res.error());
    return List{std::move(res->items), res->resourceVersion};
  }

  Expected<WatchPtr, ApiError> watch(const Resource& r, const std::string& ns,
                                     const ListOptions& o) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    api::ListOptions lo;
    lo.labelSelector = o.labelSelector;
    lo.fieldSelector = o.fieldSelector;
    lo.resourceVersion = o.resourceVersion;
    auto h = storage_.watch(**info, ns, lo, false);
    if (!h) return Unexpected(h.error());
    return WatchPtr(new LocalWatch(storage_, std::move(*h)));
  }

  Result create(const Resource& r, const std::string& ns, const Json& obj) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    auto res = storage_.create(**info, ns, obj, options(""));
    if (!res) return Unexpected(res.error());
    return std::move(res->object);
  }

  Result update(const Resource& r, const std::string& ns, const Json& obj,
                const std::string& sub) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    std::string name = json::getString(obj, {"metadata", "name"});
    auto res = sub == "scale" ? storage_.updateScale(**info, ns, name, obj, options(""))
                              : storage_.update(**info, ns, name, obj, options(sub));
    if (!res) return Unexpected(res.error());
    return std::move(res->object);
  }

  Result patch(const Resource& r, const std::string& ns, const std::string& name,
               const Json& mergePatch, const std::string& sub) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    auto res = sub == "scale" ? storage_.patchScale(**info, ns, name, api::PatchType::MergePatch,
                                                    json::dump(mergePatch), options(""))
                              : storage_.patch(**info, ns, name, api::PatchType::MergePatch,
                                               json::dump(mergePatch), options(sub));
    if (!res) return Unexpected(res.error());
    return std::move(res->object);
  }

  Result apply(const Resource& r, const std::string& ns, const Json& config, bool force,
               DryRun dryRun) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    auto o = options("");
    o.force = force;
    o.dryRun = dryRun != DryRun::No;
    if (dryRun == DryRun::Strict) o.fieldValidation = api::FieldValidation::Strict;
    std::string name = json::getString(config, {"metadata", "name"});
    auto res = storage_.patch(**info, ns, name, api::PatchType::Apply, json::dump(config), o);
    if (!res) return Unexpected(res.error());
    return std::move(res->object);
  }

  Result remove(const Resource& r, const std::string& ns, const std::string& name,
                const DeleteOptions& d) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    api::DeleteOptions o;
    o.propagationPolicy = d.propagationPolicy;
    o.gracePeriodSeconds = d.gracePeriodSeconds;
    o.preconditionUid = d.preconditionUid;
    o.preconditionResourceVersion = d.preconditionResourceVersion;
    auto res = storage_.remove(**info, ns, name, o);
    if (!res) return Unexpected(res.error());
    return std::move(res->object);
  }

  Expected<void, ApiError> bind(const std::string& ns, const std::string& pod,
                                const std::string& uid, const std::string& node) override {
    auto res = storage_.bind(ns, pod, uid, node, options(""));
    if (!res) return Unexpected(res.error());
    return {};
  }

  Result getScale(const Resource& r, const std::string& ns, const std::string& name) override {
    auto info = resolve(r);
    if (!info) return Unexpected(info.error());
    return storage_.getScale(**info, ns, name);
  }

  Result getRaw(const std::string& path) override {
    api::AggregatedPath p;
    auto api = parseAggregatedPath(path, &p)
                   ? storage_.registry().snapshot()->aggregated(p.group, p.version)
                   : nullptr;
    if (!api)
      return Unexpected(
          ApiError(404, "NotFound", "the server could not find the requested resource"));
    return api->get(p.rest, p.query);
  }

  Result requestCertificate(const std::string& ns, const std::string& serviceAccount,
                            const Json& request) override {
    return storage_.issueCertificate(ns, serviceAccount, request, "");
  }

  std::vector<Resource> namespacedResources() override { return collect(true); }
  std::vector<Resource> allResources() override { return collect(false); }

  std::optional<Resource> resourceFor(const std::string& apiVersion,
                                      const std::string& kind) override {
    std::string group, version = apiVersion;
    if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
      group = apiVersion.substr(0, slash);
      version = apiVersion.substr(slash + 1);
    }
    auto r = storage_.registry().snapshot()->findKind(group, version, kind);
    if (!r) return std::nullopt;
    return Resource{r->group, r->version, r->plural};
  }

  bool namespaced(const Resource& r) override {
    auto info = storage_.registry().snapshot()->find(r.group, r.version, r.plural);
    return info && info->namespaced;
  }

 private:
  Expected<api::ResourcePtr, ApiError> resolve(const Resource& r) {
    auto info = storage_.registry().snapshot()->find(r.group, r.version, r.plural);
    if (!info)
      return Unexpected(ApiError(
          404, "NotFound", "the server could not find the requested resource (" + r.plural + ")"));
    return info;
  }

  api::WriteOptions options(const std::string& sub) const {
    api::WriteOptions o;
    o.fieldManager = manager_;
    o.subresource = sub;
    o.fieldValidation = api::FieldValidation::Ignore;
    return o;
  }

  std::vector<Resource> collect(bool namespacedOnly) {
    std::vector<Resource> out;
    for (const auto& r : storage_.registry().snapshot()->all()) {
      if (namespacedOnly && !r->namespaced) continue;
      if (!r->storageVersion.empty() && r->version != r->storageVersion)
        continue;  // one version per resource
      out.push_back(Resource{r->group, r->version, r->plural});
    }
    return out;
  }

  api::Storage& storage_;
  std::string manager_;
};

}  // namespace

ClientPtr newLocalClient(api::Storage& storage, std::string fieldManager) {
  return ClientPtr(new LocalClient(storage, std::move(fieldManager)));
}

}  // namespace podium::client
