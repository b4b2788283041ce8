#pragma once

// The watch cache: an in-memory copy of every object in the store, kept current by one store
// watch, that serves gets, lists and watches (kube-apiserver's cacher, for all resources at
// once). Objects are parsed once and shared immutably by every reader.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "podium/common/expected.h"
#include "podium/common/json.h"
#include "podium/store/store.h"

namespace podium::api {

using ObjectPtr = std::shared_ptr<const Json>;

struct CachedObject {
  ObjectPtr object;  // metadata.resourceVersion is set
  int64_t revision = 0;
};

enum class WatchEventType { Added, Modified, Deleted };

struct CacheEvent {
  WatchEventType type;  // store-level: Added = created, Modified = updated, Deleted
  int64_t revision = 0;
  std::string key;
  ObjectPtr object;    // new state (for Deleted: last state, with the deletion revision)
  ObjectPtr previous;  // state before this event (null for creations, or if unknown)
};

// A filtered view of events for one watch. Thread-safe. The owner polls with `drain()` after
// its wake-up callback fires (the callback runs on the cacher's thread and must only signal).
class CacheWatcher {
 public:
  using Filter = std::function<bool(const Json&)>;
  struct Event {
    WatchEventType type;  // as the client sees it, after filtering
    ObjectPtr object;
    int64_t revision;
  };

  CacheWatcher(std::string prefix, Filter filter, size_t capacity);

  // Moves queued events into `out`; returns false once the watch has ended (overflow or stop).
  bool drain(std::vector<Event>& out);
  // Revision the watcher is caught up to (for bookmarks): every event at or below it that
  // matches has been queued.
  int64_t caughtUp() const;
  void setWakeup(std::function<void()> wake);
  bool overflowed() const;
  // How many synthetic ADDED events began this watch (watches that start with current state).
  size_t initialEvents() const { return initial_; }

 private:
  friend class Cacher;
  void dispatch(const CacheEvent& ev);  // cacher lock held
  void push(Event ev);
  void wake();

  const std::string prefix_;
  const Filter filter_;
  const size_t capacity_;
  mutable std::mutex mu_;  // guards everything below
  std::deque<Event> queue_;
  int64_t caughtUp_ = 0;
  bool overflow_ = false;
  bool stopped_ = false;
  size_t initial_ = 0;
  std::function<void()> wake_;
};
using CacheWatcherPtr = std::shared_ptr<CacheWatcher>;

class Cacher {
 public:
  // `historyEvents`: how many recent events are kept for watches that resume from a revision.
  Cacher(store::Store& store, size_t historyEvents);
  ~Cacher();

  // Loads the store and starts following it. Call once before use.
  Expected<void, std::string> start();

  // Current state of one key.
  std::optional<CachedObject> get(const std::string& key) const;
  // All objects under `prefix` (sorted by key) and the revision they are current at.
  std::vector<CachedObject> list(const std::string& prefix, int64_t* revision) const;
  int64_t revision() const;
  // Waits (up to `timeout`) until the cache has applied every change up to `revision`: what a
  // write waits for before it answers (so the writer reads it back), and a consistent read for
  // the store's current revision (another server's writes, on a shared store). False on time out.
  bool waitForRevision(int64_t revision, std::chrono::milliseconds timeout) const;

  enum class WatchError { None, Expired, TooNew };
  // Starts a watch under `prefix`. `fromRevision` < 0: begin with a synthetic ADDED event for
  // every current matching object, then changes. Otherwise only changes after that revision,
  // replayed from history (Expired if it is older than the history, TooNew if in the future).
  Expected<CacheWatcherPtr, WatchError> watch(const std::string& prefix, int64_t fromRevision,
                                              CacheWatcher::Filter filter,
                                              int64_t* oldestAvailable = nullptr);
  void stopWatch(const CacheWatcherPtr& w);

  // Called (on the store's commit thread, cache lock not held) after each batch of events is
  // applied; used to react synchronously to changes (e.g. CRDs). Register before start().
  void addListener(std::string prefix,
                   std::function<void(const std::vector<CacheEvent>&)> listener);

  size_t objectCount() const;

  // A write this server is about to make: the bytes it stores under `key` and the object they
  // decode to (without its resourceVersion, which the cache sets). The write's event then takes
  // the object instead of parsing the bytes again (matched by key and bytes: a large object
  // costs several times more to parse than to copy). forget() it when the write failed.
  using Bytes = std::shared_ptr<const std::string>;
  void expect(const std::string& key, Bytes bytes, std::shared_ptr<Json> decoded);
  void forget(const std::string& key, const Bytes& bytes);

 private:
  void onStoreEvents(const std::vector<store::Event>& events, int64_t applyAfter);
  ObjectPtr decode(const store::KeyValue& kv) const;
  // The expected object of a write whose event this is, if any (taken).
  ObjectPtr takeExpected(const store::KeyValue& kv);

  store::Store& store_;
  const size_t historyLimit_;
  store::WatchPtr storeWatch_;

  mutable std::mutex mu_;                       // guards the state below
  mutable std::condition_variable revisionCv_;  // revision_ moved
  std::map<std::string, CachedObject, std::less<>> objects_;
  std::deque<CacheEvent> history_;
  int64_t revision_ = 0;
  int64_t oldestResumable_ = 0;  // watches may resume from revisions >= this
  std::vector<CacheWatcherPtr> watchers_;
  std::vector<std::pair<std::string, std::function<void(const std::vector<CacheEvent>&)>>>
      listeners_;

  std::mutex expectedMu_;  // guards expected_
  std::multimap<std::string, std::pair<Bytes, std::shared_ptr<Json>>> expected_;
};

}  // namespace podium::api
