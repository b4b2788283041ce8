#pragma once

// The store: a versioned key-value map, the one place cluster state is kept.
//
// Every successful write gets the next value of one global, strictly increasing revision (the
// Kubernetes resourceVersion). Keys are opaque byte strings; the API server uses
// "/registry/<group>/<resource>/[<namespace>/]<name>". Values are opaque bytes.
//
// Contract shared by every backend (SQLite today, etcd for several servers):
//  - A write that returned success is durable: it survives kill -9 of the process.
//  - Writes are linearizable: a read or watch started after a write returned sees it.
//  - Watch delivers every change to a key under the prefix, in revision order, exactly once,
//    starting after the requested revision; if that revision has been compacted away the watch
//    is refused with Errc::Compacted.
// All methods are thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "podium/common/expected.h"

namespace podium::store {

enum class Errc {
  NotFound,        // key absent
  AlreadyExists,   // create of a key that exists
  Conflict,        // revision precondition failed
  Compacted,       // requested revision is older than the retained history
  FutureRevision,  // requested revision is newer than the store's current revision
  Unavailable,     // store closed or backend unreachable
  Internal,        // I/O or database failure
};

struct Error {
  Errc code = Errc::Internal;
  std::string message;
  // For Conflict/AlreadyExists: the key's current modification revision (0 if absent).
  int64_t currentRevision = 0;
};

template <class T>
using Result = Expected<T, Error>;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t createRevision = 0;  // revision of the write that created the key
  int64_t modRevision = 0;     // revision of the last write to the key
};

struct ListResult {
  std::vector<KeyValue> items;  // sorted by key
  int64_t revision = 0;         // store revision the list was read at
};

enum class EventType { Put, Delete };

struct Event {
  EventType type = EventType::Put;
  // For Put: the new value. For Delete: the key's last value, with modRevision set to the
  // revision of the deletion.
  KeyValue kv;
  // True when this Put created the key.
  bool created = false;
  // The key's previous value for updates and deletes (empty for creates).
  std::string prevValue;
};

// Called in revision order, never concurrently for one watch. Must not block for long: the
// store may call it on its commit thread.
using WatchCallback = std::function<void(const std::vector<Event>&)>;

// A running watch. Destroy it before the store, and never from inside its own callback.
class Watch {
 public:
  virtual ~Watch() = default;  // stops the watch; no callback runs after the destructor returns
};
using WatchPtr = std::unique_ptr<Watch>;

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<KeyValue> get(const std::string& key) = 0;
  // All keys that start with `prefix`, sorted by key, at one revision.
  virtual Result<ListResult> list(const std::string& prefix) = 0;

  // Creates `key`; AlreadyExists if present. Returns the new revision.
  virtual Result<int64_t> create(const std::string& key, const std::string& value) = 0;
  // Replaces `key` if its modRevision equals `expectedModRevision` (Conflict otherwise,
  // NotFound if absent). Returns the new revision.
  virtual Result<int64_t> update(const std::string& key, const std::string& value,
                                 int64_t expectedModRevision) = 0;
  // Deletes `key` if its modRevision equals `expectedModRevision` (0 = unconditionally).
  // Returns the revision of the deletion.
  virtual Result<int64_t> remove(const std::string& key, int64_t expectedModRevision) = 0;

  // Watches keys under `prefix` for changes after `afterRevision` (history first, then live).
  virtual Result<WatchPtr> watch(const std::string& prefix, int64_t afterRevision,
                                 WatchCallback callback) = 0;

  virtual int64_t currentRevision() = 0;
  // Oldest revision a watch may start after; older ones get Errc::Compacted.
  virtual int64_t compactedRevision() = 0;
  // Drops history up to and including `revision` (watchers that are live are unaffected).
  virtual Result<int64_t> compact(int64_t revision) = 0;
};
using StorePtr = std::unique_ptr<Store>;

const char* errcName(Errc code);

}  // namespace podium::store
