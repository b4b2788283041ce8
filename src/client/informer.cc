#include "podium/client/informer.h"

#include "podium/common/log.h"

namespace podium::client {

Informer::Informer(Client& client, Resource resource, std::string ns, ListOptions options,
                   std::chrono::milliseconds resync)
    : client_(client),
      resource_(std::move(resource)),
      ns_(std::move(ns)),
      options_(std::move(options)),
      resync_(resync) {}

Informer::~Informer() { stop(); }

void Informer::addHandlers(EventHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::start() {
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(watchMu_);
    if (watch_) watch_->stop();
  }
  if (thread_.joinable()) thread_.join();
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!synced_ && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return synced_;
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

bool Informer::listAndReplace(std::string* resourceVersion) {
  auto l = client_.list(resource_, ns_, options_);
  if (!l) {
    PODIUM_LOG(Warn) << "informer " << resource_.plural << ": list failed: " << l.error().message();
    return false;
  }
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
  *resourceVersion = l->resourceVersion;
  synced_ = true;
  return true;
}

void Informer::apply(const Event& e) {
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

void Informer::run() {
  auto lastResync = std::chrono::steady_clock::now();
  while (!stopping_) {
    std::string rv;
    if (!listAndReplace(&rv)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    ListOptions wo = options_;
    wo.resourceVersion = rv;
    auto w = client_.watch(resource_, ns_, wo);
    if (!w) {
      PODIUM_LOG(Debug) << "informer " << resource_.plural << ": watch: " << w.error().message();
      continue;  // 410 and friends: relist
    }
    {
      std::lock_guard<std::mutex> lock(watchMu_);
      watch_ = w->get();
    }
    std::vector<Event> events;
    while (!stopping_) {
      events.clear();
      bool open = (*w)->next(events, std::chrono::milliseconds(1000));
      for (const auto& e : events) apply(e);
      if (!open) break;
      if (resync_.count() > 0 && std::chrono::steady_clock::now() - lastResync >= resync_) {
        lastResync = std::chrono::steady_clock::now();
        for (const auto& obj : list())
          for (auto& h : handlers_)
            if (h.onUpdate) h.onUpdate(obj, obj);
      }
    }
    std::lock_guard<std::mutex> lock(watchMu_);
    watch_ = nullptr;
  }
}

}  // namespace podium::client
