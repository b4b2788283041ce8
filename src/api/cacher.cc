#include "podium/api/cacher.h"

#include <algorithm>

#include "podium/common/log.h"

namespace podium::api {

CacheWatcher::CacheWatcher(std::string prefix, Filter filter, size_t capacity)
    : prefix_(std::move(prefix)), filter_(std::move(filter)), capacity_(capacity) {}

bool CacheWatcher::drain(std::vector<Event>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!queue_.empty()) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return !overflow_ && !stopped_;
}

int64_t CacheWatcher::caughtUp() const {
  std::lock_guard<std::mutex> lock(mu_);
  return caughtUp_;
}

bool CacheWatcher::overflowed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflow_;
}

void CacheWatcher::setWakeup(std::function<void()> wake) {
  bool pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = std::move(wake);
    pending = !queue_.empty() || overflow_ || stopped_;
  }
  if (pending) this->wake();
}

void CacheWatcher::wake() {
  std::function<void()> w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    w = wake_;
  }
  if (w) w();
}

void CacheWatcher::push(Event ev) {
  std::lock_guard<std::mutex> lock(mu_);
  if (overflow_ || stopped_) return;
  if (queue_.size() >= capacity_) {
    overflow_ = true;  // a consumer this far behind must restart from a fresh list
    queue_.clear();
    return;
  }
  queue_.push_back(std::move(ev));
}

void CacheWatcher::dispatch(const CacheEvent& ev) {
  if (ev.key.compare(0, prefix_.size(), prefix_) == 0) {
    bool now = ev.type != WatchEventType::Deleted && (!filter_ || filter_(*ev.object));
    bool before = false;
    if (ev.type == WatchEventType::Deleted)
      before = !filter_ || filter_(*ev.object);
    else if (ev.previous)
      before = !filter_ || filter_(*ev.previous);
    else if (ev.type == WatchEventType::Modified)
      before = now;  // history without the old state
    if (ev.type == WatchEventType::Deleted) {
      if (before) push({WatchEventType::Deleted, ev.object, ev.revision});
    } else if (now && before) {
      push({WatchEventType::Modified, ev.object, ev.revision});
    } else if (now) {
      push({WatchEventType::Added, ev.object, ev.revision});
    } else if (before) {
      push({WatchEventType::Deleted, ev.object, ev.revision});
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  caughtUp_ = std::max(caughtUp_, ev.revision);
}

Cacher::Cacher(store::Store& store, size_t historyEvents)
    : store_(store), historyLimit_(historyEvents) {}

Cacher::~Cacher() { storeWatch_.reset(); }

ObjectPtr Cacher::decode(const store::KeyValue& kv) const {
  // The store holds what the API server wrote (json::dump of checked objects): parsed without
  // the duplicate-key and depth bookkeeping requests need — several times faster on the large
  // objects (an Application's status of a thousand resources) every write decodes here.
  Json obj = Json::parse(kv.value, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) {
    PODIUM_LOG(Error) << "undecodable object in store at " << kv.key;
    obj = Json::object();
  }
  if (!obj.is_object()) obj = Json::object();
  obj["metadata"]["resourceVersion"] = std::to_string(kv.modRevision);
  return std::make_shared<const Json>(std::move(obj));
}

void Cacher::expect(const std::string& key, Bytes bytes, std::shared_ptr<Json> decoded) {
  std::lock_guard<std::mutex> lock(expectedMu_);
  // Bounded: an event this cache never saw (a store watch restarted past it) leaves its entry;
  // dropping entries only means decoding.
  if (expected_.size() >= 4096) expected_.clear();
  expected_.emplace(key, std::make_pair(std::move(bytes), std::move(decoded)));
}

void Cacher::forget(const std::string& key, const Bytes& bytes) {
  std::lock_guard<std::mutex> lock(expectedMu_);
  auto [from, to] = expected_.equal_range(key);
  for (auto it = from; it != to; ++it)
    if (it->second.first == bytes) {
      expected_.erase(it);
      return;
    }
}

ObjectPtr Cacher::takeExpected(const store::KeyValue& kv) {
  std::shared_ptr<Json> obj;
  {
    std::lock_guard<std::mutex> lock(expectedMu_);
    auto [from, to] = expected_.equal_range(kv.key);
    for (auto it = from; it != to; ++it)
      if (*it->second.first == kv.value) {
        obj = std::move(it->second.second);
        expected_.erase(it);
        break;
      }
  }
  if (!obj || !obj->is_object()) return nullptr;
  (*obj)["metadata"]["resourceVersion"] = std::to_string(kv.modRevision);
  return obj;
}

Expected<void, std::string> Cacher::start() {
  auto listed = store_.list("/registry/");
  if (!listed) return Unexpected("initial list: " + listed.error().message);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& kv : listed->items)
      objects_[kv.key] = CachedObject{decode(kv), kv.modRevision};
    revision_ = listed->revision;
  }
  // Replay the store's retained history into the event ring so watches can resume from before
  // this start, then follow live changes. Events up to the list's revision are history only.
  int64_t from =
      std::max(store_.compactedRevision(), listed->revision - static_cast<int64_t>(historyLimit_));
  from = std::max<int64_t>(from, 0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    oldestResumable_ = from;
  }
  int64_t applyAfter = listed->revision;
  auto w = store_.watch(
      "/registry/", from,
      [this, applyAfter](const std::vector<store::Event>& evs) { onStoreEvents(evs, applyAfter); });
  if (!w) return Unexpected("watch: " + w.error().message);
  storeWatch_ = std::move(*w);
  return {};
}

void Cacher::onStoreEvents(const std::vector<store::Event>& events, int64_t applyAfter) {
  std::vector<CacheEvent> applied;
  std::vector<CacheWatcherPtr> toWake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : events) {
      CacheEvent ev;
      ev.key = e.kv.key;
      ev.revision = e.kv.modRevision;
      bool live = e.kv.modRevision > applyAfter;
      if (e.type == store::EventType::Delete) {
        ev.type = WatchEventType::Deleted;
        ev.object = decode(e.kv);
      } else {
        ev.type = e.created ? WatchEventType::Added : WatchEventType::Modified;
        ev.object = takeExpected(e.kv);
        if (!ev.object) ev.object = decode(e.kv);
      }
      if (live) {
        auto it = objects_.find(ev.key);
        if (it != objects_.end()) ev.previous = it->second.object;
        if (ev.type == WatchEventType::Deleted) {
          if (it != objects_.end()) objects_.erase(it);
        } else {
          objects_[ev.key] = CachedObject{ev.object, ev.revision};
        }
        revision_ = std::max(revision_, ev.revision);
      } else if (!e.prevValue.empty()) {
        store::KeyValue prev{e.kv.key, e.prevValue, e.kv.createRevision, e.kv.modRevision};
        ev.previous = decode(prev);
      }
      history_.push_back(ev);
      while (history_.size() > historyLimit_) {
        oldestResumable_ = history_.front().revision;
        history_.pop_front();
      }
      if (live) {
        for (auto& w : watchers_) w->dispatch(ev);
        applied.push_back(std::move(ev));
      }
    }
    if (!applied.empty()) toWake = watchers_;
  }
  revisionCv_.notify_all();
  if (applied.empty()) return;
  for (auto& w : toWake) w->wake();
  for (const auto& [prefix, fn] : listeners_) {
    std::vector<CacheEvent> mine;
    for (const auto& ev : applied)
      if (ev.key.compare(0, prefix.size(), prefix) == 0) mine.push_back(ev);
    if (!mine.empty()) fn(mine);
  }
}

std::optional<CachedObject> Cacher::get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

std::vector<CachedObject> Cacher::list(const std::string& prefix, int64_t* revision) const {
  std::vector<CachedObject> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = objects_.lower_bound(prefix); it != objects_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->second);
  }
  if (revision) *revision = revision_;
  return out;
}

int64_t Cacher::revision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return revision_;
}

bool Cacher::waitForRevision(int64_t revision, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return revisionCv_.wait_for(lock, timeout, [&] { return revision_ >= revision; });
}

size_t Cacher::objectCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return objects_.size();
}

Expected<CacheWatcherPtr, Cacher::WatchError> Cacher::watch(const std::string& prefix,
                                                            int64_t fromRevision,
                                                            CacheWatcher::Filter filter,
                                                            int64_t* oldestAvailable) {
  auto w = std::make_shared<CacheWatcher>(prefix, std::move(filter), 100000);
  std::lock_guard<std::mutex> lock(mu_);
  if (oldestAvailable) *oldestAvailable = oldestResumable_;
  if (fromRevision < 0) {
    for (auto it = objects_.lower_bound(prefix); it != objects_.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      if (!w->filter_ || w->filter_(*it->second.object)) {
        w->push({WatchEventType::Added, it->second.object, it->second.revision});
        ++w->initial_;
      }
    }
  } else {
    if (fromRevision > revision_) return Unexpected(WatchError::TooNew);
    if (fromRevision < oldestResumable_) return Unexpected(WatchError::Expired);
    for (const auto& ev : history_)
      if (ev.revision > fromRevision) w->dispatch(ev);
  }
  {
    std::lock_guard<std::mutex> wl(w->mu_);
    w->caughtUp_ = std::max(w->caughtUp_, revision_);
  }
  watchers_.push_back(w);
  return w;
}

void Cacher::stopWatch(const CacheWatcherPtr& w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w), watchers_.end());
  }
  std::lock_guard<std::mutex> wl(w->mu_);
  w->stopped_ = true;
  w->wake_ = nullptr;
}

void Cacher::addListener(std::string prefix,
                         std::function<void(const std::vector<CacheEvent>&)> listener) {
  listeners_.emplace_back(std::move(prefix), std::move(listener));
}

}  // namespace podium::api
