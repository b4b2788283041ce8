#include "podium/client/informer.h"

#include "podium/common/log.h"

namespace podium::client {

namespace {
// A watch that ran this long was healthy: trouble after it starts the back-off afresh.
constexpr auto kHealthyWatch = std::chrono::seconds(10);
}  // namespace

Informer::Informer(Client& client, Resource resource, InformerOptions options)
    : client_(client),
      resource_(std::move(resource)),
      options_(std::move(options)),
      backoff_(options_.backoff, *options_.random) {}

Informer::~Informer() { stop(); }

void Informer::addHandlers(EventHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  {
    std::lock_guard<std::mutex> lock(watchMu_);
    stopping_ = true;
    if (watch_) watch_->stop();
    stopCv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!synced_ && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return synced_;
}

std::string Informer::lastResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lastRv_;
}

std::string Informer::keyOf(const Json& obj) {
  std::string ns = json::getString(obj, {"metadata", "namespace"});
  std::string name = json::getString(obj, {"metadata", "name"});
  return ns.empty() ? name : ns + "/" + name;
}

std::pair<std::string, std::string> Informer::splitKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

ObjectPtr Informer::get(const std::string& ns, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(ns.empty() ? name : ns + "/" + name);
  return it == cache_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::list(const std::string& ns,
                                      const std::function<bool(const Json&)>& filter) const {
  std::vector<ObjectPtr> out;
  std::lock_guard<std::mutex> lock(mu_);
  std::string prefix = ns.empty() ? "" : ns + "/";
  for (auto it = cache_.lower_bound(prefix); it != cache_.end(); ++it) {
    if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
    if (!filter || filter(*it->second)) out.push_back(it->second);
  }
  return out;
}

Expected<std::string, api::ApiError> Informer::listAndReplace() {
  auto l = client_.list(resource_, options_.ns, options_.list);
  if (!l) return Unexpected(l.error());
  std::map<std::string, ObjectPtr> fresh;
  for (auto& item : l->items) fresh[keyOf(*item)] = item;
  std::vector<std::pair<ObjectPtr, ObjectPtr>> updates;  // (old, new); old null = add
  std::vector<ObjectPtr> deletes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, obj] : fresh) {
      auto it = cache_.find(k);
      updates.emplace_back(it == cache_.end() ? nullptr : it->second, obj);
    }
    for (const auto& [k, obj] : cache_)
      if (!fresh.count(k)) deletes.push_back(obj);
    cache_ = std::move(fresh);
    lastRv_ = l->resourceVersion;
  }
  for (auto& [oldObj, newObj] : updates)
    for (auto& h : handlers_) {
      if (!oldObj && h.onAdd)
        h.onAdd(newObj);
      else if (oldObj && h.onUpdate)
        h.onUpdate(oldObj, newObj);
    }
  for (auto& d : deletes)
    for (auto& h : handlers_)
      if (h.onDelete) h.onDelete(d);
  synced_ = true;
  return l->resourceVersion;
}

void Informer::apply(const Event& e) {
  std::string rv = json::getString(*e.object, {"metadata", "resourceVersion"});
  if (e.type == EventType::Bookmark) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!rv.empty()) lastRv_ = rv;
    return;
  }
  std::string k = keyOf(*e.object);
  ObjectPtr old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(k);
    if (it != cache_.end()) old = it->second;
    if (e.type == EventType::Deleted)
      cache_.erase(k);
    else
      cache_[k] = e.object;
    if (!rv.empty()) lastRv_ = rv;
  }
  for (auto& h : handlers_) {
    if (e.type == EventType::Deleted) {
      if (h.onDelete) h.onDelete(e.object);
    } else if (old) {
      if (h.onUpdate) h.onUpdate(old, e.object);
    } else if (h.onAdd) {
      h.onAdd(e.object);
    }
  }
}

void Informer::deliverResync() {
  if (options_.resync.count() <= 0) return;
  auto now = options_.clock->monotonic();
  if (now - lastResync_ < options_.resync) return;
  lastResync_ = now;
  for (const auto& obj : list())
    for (auto& h : handlers_)
      if (h.onUpdate) h.onUpdate(obj, obj);
}

void Informer::failed(const api::ApiError& error) {
  auto delay = backoff_.next();
  PODIUM_LOG(Debug) << "informer " << resource_.plural << ": " << error.message() << "; again in "
                    << delay.count() << " ms";
  if (options_.onError) options_.onError(error, delay);
  std::unique_lock<std::mutex> lock(watchMu_);
  stopCv_.wait_for(lock, delay, [this] { return stopping_.load(); });
}

std::chrono::steady_clock::duration Informer::watchFrom(const std::string& rv) {
  auto began = options_.clock->monotonic();
  ListOptions wo = options_.list;
  wo.resourceVersion = rv;
  auto w = client_.watch(resource_, options_.ns, wo);
  if (!w) {
    // 410 Gone: the version is older than the server keeps; list again at once.
    if (w.error().code() != 410) failed(w.error());
    return std::chrono::steady_clock::duration::zero();
  }
  {
    std::lock_guard<std::mutex> lock(watchMu_);
    if (stopping_) return std::chrono::steady_clock::duration::zero();
    watch_ = w->get();
  }
  std::vector<Event> events;
  while (!stopping_) {
    events.clear();
    bool open = (*w)->next(events, std::chrono::milliseconds(1000));
    for (const auto& e : events) apply(e);
    if (!open) break;
    deliverResync();
  }
  std::lock_guard<std::mutex> lock(watchMu_);
  watch_ = nullptr;
  return options_.clock->monotonic() - began;
}

void Informer::run() {
  lastResync_ = options_.clock->monotonic();
  bool needList = true;
  while (!stopping_) {
    if (needList) {
      auto listed = listAndReplace();
      if (!listed) {
        failed(listed.error());
        continue;
      }
      needList = false;
    }
    auto ran = watchFrom(lastResourceVersion());
    if (stopping_) break;
    if (ran >= kHealthyWatch) {
      // A watch ends now and then (server timeouts, a slow reader dropped): watch on from the
      // newest version seen; a version the server no longer has makes the next watch fail,
      // and that failure relists.
      backoff_.reset();
      continue;
    }
    // The watch failed or ended at once: list again, after a back-off, so a server in trouble
    // is not hammered.
    if (ran > std::chrono::steady_clock::duration::zero())
      failed(api::ApiError(500, "WatchEnded", "the watch ended early"));
    needList = true;
  }
}

}  // namespace podium::client
