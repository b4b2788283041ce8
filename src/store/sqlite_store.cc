#include "podium/store/sqlite_store.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "podium/common/log.h"
#include "sqlite.h"

namespace podium::store {
namespace {

using sqlite::Connection;
using sqlite::Statement;

Error err(Errc code, std::string message, int64_t rev = 0) {
  return Error{code, std::move(message), rev};
}

// Smallest string greater than every string that starts with `prefix` ("" = no upper bound).
std::string prefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL,
  value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
  rev INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  create_rev INTEGER NOT NULL,
  value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES ('revision', 0), ('compacted', 0), ('format', 1);
)sql";

class SqliteStore;

struct WatchEntry {
  std::string prefix;
  WatchCallback callback;
};

class SqliteWatch : public Watch {
 public:
  SqliteWatch(SqliteStore* store, std::list<WatchEntry>::iterator it) : store_(store), it_(it) {}
  ~SqliteWatch() override;

 private:
  SqliteStore* store_;
  std::list<WatchEntry>::iterator it_;
};

enum class OpKind { Create, Update, Delete };

struct Op {
  OpKind kind;
  std::string key;
  std::string value;
  int64_t expected = 0;
  std::promise<Result<int64_t>> done;
};

// A read connection borrowed from the pool for the duration of one call.
struct Reader {
  Connection conn;
  Statement get, list, meta, history;
};

class SqliteStore : public Store {
 public:
  explicit SqliteStore(SqliteOptions options) : options_(std::move(options)) {}
  ~SqliteStore() override {
    {
      std::lock_guard<std::mutex> lock(queueMu_);
      stopping_ = true;
    }
    queueCv_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  std::string init() {
    if (auto e = conn_.open(options_.path, false); !e.empty()) return e;
    // auto_vacuum must be chosen before the first table exists; it lets compaction give pages back.
    for (const char* pragma :
         {"PRAGMA auto_vacuum=INCREMENTAL;", "PRAGMA journal_mode=WAL;",
          "PRAGMA journal_size_limit=67108864;", "PRAGMA temp_store=MEMORY;"}) {
      if (auto e = conn_.exec(pragma); !e.empty()) return std::string(pragma) + ": " + e;
    }
    if (auto e = conn_.exec(options_.fsyncEveryCommit ? "PRAGMA synchronous=FULL;"
                                                      : "PRAGMA synchronous=NORMAL;");
        !e.empty())
      return e;
    if (auto e = conn_.exec(kSchema); !e.empty()) return "schema: " + e;
    sel_ = Statement(conn_.get(), "SELECT create_rev, mod_rev, value FROM kv WHERE key = ?");
    upsert_ = Statement(
        conn_.get(),
        "INSERT INTO kv(key, create_rev, mod_rev, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET mod_rev = excluded.mod_rev, value = excluded.value");
    del_ = Statement(conn_.get(), "DELETE FROM kv WHERE key = ?");
    logIns_ =
        Statement(conn_.get(),
                  "INSERT INTO log(rev, key, deleted, create_rev, value) VALUES (?, ?, ?, ?, ?)");
    setMeta_ = Statement(conn_.get(), "UPDATE meta SET value = ? WHERE name = ?");
    Statement getMeta(conn_.get(), "SELECT value FROM meta WHERE name = ?");
    if (!sel_.ok() || !upsert_.ok() || !del_.ok() || !logIns_.ok() || !setMeta_.ok() ||
        !getMeta.ok())
      return "prepare: " + conn_.lastError();
    auto meta = [&](const char* name) {
      getMeta.reset();
      getMeta.bind(1, std::string_view(name));
      return getMeta.step() == SQLITE_ROW ? getMeta.int64(0) : 0;
    };
    revision_ = meta("revision");
    compacted_ = meta("compacted");
    // The log can be ahead of meta only if a crash hit between them; they share a transaction,
    // so this is a consistency check rather than a repair.
    Statement maxRev(conn_.get(), "SELECT COALESCE(MAX(rev), 0) FROM log");
    if (maxRev.step() == SQLITE_ROW && maxRev.int64(0) > revision_) revision_ = maxRev.int64(0);
    writer_ = std::thread([this] { writerLoop(); });
    return "";
  }

  Result<KeyValue> get(const std::string& key) override {
    auto r = borrowReader();
    if (!r) return Unexpected(r.error());
    Reader& rd = **r;
    rd.get.reset();
    rd.get.bind(1, key);
    int rc = rd.get.step();
    Result<KeyValue> out = Unexpected(err(Errc::NotFound, "key not found: " + key));
    if (rc == SQLITE_ROW) {
      out = KeyValue{key, rd.get.text(2), rd.get.int64(0), rd.get.int64(1)};
    } else if (rc != SQLITE_DONE) {
      out = Unexpected(err(Errc::Internal, "get: " + rd.conn.lastError()));
    }
    rd.get.reset();
    returnReader(std::move(*r));
    return out;
  }

  Result<ListResult> list(const std::string& prefix) override {
    auto r = borrowReader();
    if (!r) return Unexpected(r.error());
    Reader& rd = **r;
    ListResult out;
    std::string end = prefixEnd(prefix);
    rd.conn.exec("BEGIN");
    rd.meta.reset();
    rd.meta.bind(1, std::string_view("revision"));
    if (rd.meta.step() == SQLITE_ROW) out.revision = rd.meta.int64(0);
    rd.meta.reset();
    rd.list.reset();
    rd.list.bind(1, prefix).bind(2, end.empty() ? std::string(1, '\xff') + "\xff\xff\xff" : end);
    int rc;
    while ((rc = rd.list.step()) == SQLITE_ROW) {
      out.items.push_back(
          KeyValue{rd.list.text(0), rd.list.text(3), rd.list.int64(1), rd.list.int64(2)});
    }
    rd.list.reset();
    rd.conn.exec("COMMIT");
    bool failed = rc != SQLITE_DONE;
    std::string msg = failed ? rd.conn.lastError() : "";
    returnReader(std::move(*r));
    if (failed) return Unexpected(err(Errc::Internal, "list: " + msg));
    return out;
  }

  Result<int64_t> create(const std::string& key, const std::string& value) override {
    return submit(OpKind::Create, key, value, 0);
  }
  Result<int64_t> update(const std::string& key, const std::string& value,
                         int64_t expected) override {
    return submit(OpKind::Update, key, value, expected);
  }
  Result<int64_t> remove(const std::string& key, int64_t expected) override {
    return submit(OpKind::Delete, key, "", expected);
  }

  Result<WatchPtr> watch(const std::string& prefix, int64_t after,
                         WatchCallback callback) override {
    // A list may have read a commit whose events are still being delivered; wait for it.
    {
      std::unique_lock<std::mutex> rl(revMu_);
      revCv_.wait_for(rl, std::chrono::seconds(3), [&] { return revision_ >= after; });
    }
    // Holding deliverMu_ keeps the commit thread from delivering while history is replayed, and
    // revision_ is only advanced under it, so history up to revision_ plus live events after it
    // give every event exactly once.
    std::lock_guard<std::mutex> lock(deliverMu_);
    int64_t current, compacted;
    {
      std::lock_guard<std::mutex> rl(revMu_);
      current = revision_;
      compacted = compacted_;
    }
    if (after < compacted)
      return Unexpected(err(Errc::Compacted, "required revision " + std::to_string(after) +
                                                 " has been compacted (oldest " +
                                                 std::to_string(compacted) + ")"));
    if (after > current)
      return Unexpected(err(Errc::FutureRevision, "revision " + std::to_string(after) +
                                                      " is newer than the current revision " +
                                                      std::to_string(current)));
    if (after < current) {
      auto history = readHistory(prefix, after, current);
      if (!history) return Unexpected(history.error());
      if (!history->empty()) callback(*history);
    }
    std::lock_guard<std::mutex> wl(watchersMu_);
    watchers_.push_back(WatchEntry{prefix, std::move(callback)});
    return WatchPtr(new SqliteWatch(this, std::prev(watchers_.end())));
  }

  void removeWatch(std::list<WatchEntry>::iterator it) {
    std::lock_guard<std::mutex> lock(deliverMu_);
    std::lock_guard<std::mutex> wl(watchersMu_);
    watchers_.erase(it);
  }

  int64_t currentRevision() override {
    std::lock_guard<std::mutex> lock(revMu_);
    return revision_;
  }
  int64_t compactedRevision() override {
    std::lock_guard<std::mutex> lock(revMu_);
    return compacted_;
  }

  Result<int64_t> compact(int64_t revision) override {
    std::promise<Result<int64_t>> done;
    auto fut = done.get_future();
    {
      std::lock_guard<std::mutex> lock(queueMu_);
      if (stopping_) return Unexpected(err(Errc::Unavailable, "store closed"));
      compactRequests_.push_back({revision, std::move(done)});
    }
    queueCv_.notify_one();
    return fut.get();
  }

 private:
  Result<std::unique_ptr<Reader>> borrowReader() {
    {
      std::lock_guard<std::mutex> lock(readersMu_);
      if (!readers_.empty()) {
        auto r = std::move(readers_.back());
        readers_.pop_back();
        return r;
      }
    }
    auto r = std::make_unique<Reader>();
    if (auto e = r->conn.open(options_.path, true); !e.empty())
      return Unexpected(err(Errc::Internal, e));
    r->get = Statement(r->conn.get(), "SELECT create_rev, mod_rev, value FROM kv WHERE key = ?");
    r->list = Statement(
        r->conn.get(),
        "SELECT key, create_rev, mod_rev, value FROM kv WHERE key >= ? AND key < ? ORDER BY key");
    r->meta = Statement(r->conn.get(), "SELECT value FROM meta WHERE name = ?");
    r->history = Statement(r->conn.get(),
                           "SELECT rev, key, deleted, create_rev, value FROM log "
                           "WHERE rev > ? AND rev <= ? AND key >= ? AND key < ? ORDER BY rev");
    if (!r->get.ok() || !r->list.ok() || !r->meta.ok() || !r->history.ok())
      return Unexpected(err(Errc::Internal, "prepare: " + r->conn.lastError()));
    return r;
  }

  void returnReader(std::unique_ptr<Reader> r) {
    std::lock_guard<std::mutex> lock(readersMu_);
    if (readers_.size() < 16) readers_.push_back(std::move(r));
  }

  Result<std::vector<Event>> readHistory(const std::string& prefix, int64_t after, int64_t upTo) {
    auto r = borrowReader();
    if (!r) return Unexpected(r.error());
    Reader& rd = **r;
    std::vector<Event> events;
    std::map<std::string, std::string> last;  // key -> value as of the previous history event
    std::string end = prefixEnd(prefix);
    rd.history.reset();
    rd.history.bind(1, after).bind(2, upTo).bind(3, prefix).bind(
        4, end.empty() ? std::string(4, '\xff') : end);
    int rc;
    while ((rc = rd.history.step()) == SQLITE_ROW) {
      Event ev;
      ev.kv.modRevision = rd.history.int64(0);
      ev.kv.key = rd.history.text(1);
      bool deleted = rd.history.int64(2) != 0;
      ev.kv.createRevision = rd.history.int64(3);
      ev.kv.value = rd.history.text(4);
      ev.type = deleted ? EventType::Delete : EventType::Put;
      ev.created = !deleted && ev.kv.createRevision == ev.kv.modRevision;
      if (auto it = last.find(ev.kv.key); it != last.end()) ev.prevValue = it->second;
      if (deleted) {
        last.erase(ev.kv.key);
        if (ev.prevValue.empty()) ev.prevValue = ev.kv.value;
      } else {
        last[ev.kv.key] = ev.kv.value;
      }
      events.push_back(std::move(ev));
    }
    rd.history.reset();
    bool failed = rc != SQLITE_DONE;
    std::string msg = failed ? rd.conn.lastError() : "";
    returnReader(std::move(*r));
    if (failed) return Unexpected(err(Errc::Internal, "history: " + msg));
    return events;
  }

  Result<int64_t> submit(OpKind kind, const std::string& key, const std::string& value,
                         int64_t expected) {
    auto op = std::make_unique<Op>();
    op->kind = kind;
    op->key = key;
    op->value = value;
    op->expected = expected;
    auto fut = op->done.get_future();
    {
      std::lock_guard<std::mutex> lock(queueMu_);
      if (stopping_) return Unexpected(err(Errc::Unavailable, "store closed"));
      queue_.push_back(std::move(op));
    }
    queueCv_.notify_one();
    return fut.get();
  }

  struct CompactRequest {
    int64_t revision;
    std::promise<Result<int64_t>> done;
  };

  void writerLoop() {
    std::vector<std::unique_ptr<Op>> batch;
    std::vector<CompactRequest> compactions;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(queueMu_);
        queueCv_.wait(lock,
                      [&] { return stopping_ || !queue_.empty() || !compactRequests_.empty(); });
        if (queue_.empty() && compactRequests_.empty() && stopping_) break;
        while (!queue_.empty() && batch.size() < options_.maxBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        compactions.swap(compactRequests_);
      }
      if (!batch.empty()) commitBatch(batch);
      batch.clear();
      for (auto& c : compactions) c.done.set_value(doCompact(c.revision));
      compactions.clear();
    }
    // Fail anything that raced with shutdown.
    std::lock_guard<std::mutex> lock(queueMu_);
    for (auto& op : queue_) op->done.set_value(Unexpected(err(Errc::Unavailable, "store closed")));
    queue_.clear();
  }

  void commitBatch(std::vector<std::unique_ptr<Op>>& batch) {
    std::vector<Result<int64_t>> results;
    std::vector<Event> events;
    results.reserve(batch.size());
    int64_t rev = revision_;
    std::string dbError = conn_.exec("BEGIN IMMEDIATE");
    for (auto& op : batch) {
      if (!dbError.empty()) break;
      sel_.reset();
      sel_.bind(1, op->key);
      int rc = sel_.step();
      bool exists = rc == SQLITE_ROW;
      int64_t createRev = exists ? sel_.int64(0) : 0;
      int64_t modRev = exists ? sel_.int64(1) : 0;
      std::string prev = exists ? sel_.text(2) : std::string();
      sel_.reset();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        dbError = conn_.lastError();
        break;
      }
      Result<int64_t> result = int64_t{0};
      switch (op->kind) {
        case OpKind::Create:
          if (exists)
            result = Unexpected(err(Errc::AlreadyExists, "key exists: " + op->key, modRev));
          break;
        case OpKind::Update:
          if (!exists)
            result = Unexpected(err(Errc::NotFound, "key not found: " + op->key));
          else if (modRev != op->expected)
            result = Unexpected(err(Errc::Conflict, "revision mismatch for " + op->key, modRev));
          break;
        case OpKind::Delete:
          if (!exists)
            result = Unexpected(err(Errc::NotFound, "key not found: " + op->key));
          else if (op->expected != 0 && modRev != op->expected)
            result = Unexpected(err(Errc::Conflict, "revision mismatch for " + op->key, modRev));
          break;
      }
      if (!result) {
        results.push_back(std::move(result));
        continue;
      }
      int64_t newRev = rev + 1;
      Event ev;
      ev.kv.key = op->key;
      ev.kv.modRevision = newRev;
      if (op->kind == OpKind::Delete) {
        del_.reset();
        del_.bind(1, op->key);
        if (del_.step() != SQLITE_DONE) dbError = conn_.lastError();
        del_.reset();
        ev.type = EventType::Delete;
        ev.kv.value = prev;
        ev.kv.createRevision = createRev;
        ev.prevValue = std::move(prev);
      } else {
        int64_t cr = op->kind == OpKind::Create ? newRev : createRev;
        upsert_.reset();
        upsert_.bind(1, op->key).bind(2, cr).bind(3, newRev).bindBlob(4, op->value);
        if (upsert_.step() != SQLITE_DONE) dbError = conn_.lastError();
        upsert_.reset();
        ev.type = EventType::Put;
        ev.kv.value = op->value;
        ev.kv.createRevision = cr;
        ev.created = op->kind == OpKind::Create;
        ev.prevValue = std::move(prev);
      }
      if (!dbError.empty()) break;
      logIns_.reset();
      logIns_.bind(1, newRev)
          .bind(2, op->key)
          .bind(3, int64_t{ev.type == EventType::Delete})
          .bind(4, ev.kv.createRevision)
          .bindBlob(5, ev.kv.value);
      if (logIns_.step() != SQLITE_DONE) dbError = conn_.lastError();
      logIns_.reset();
      if (!dbError.empty()) break;
      rev = newRev;
      results.push_back(newRev);
      events.push_back(std::move(ev));
    }
    if (dbError.empty() && rev != revision_) {
      setMeta_.reset();
      setMeta_.bind(1, rev).bind(2, std::string_view("revision"));
      if (setMeta_.step() != SQLITE_DONE) dbError = conn_.lastError();
      setMeta_.reset();
    }
    if (dbError.empty()) dbError = conn_.exec("COMMIT");
    if (!dbError.empty()) {
      conn_.exec("ROLLBACK");
      PODIUM_LOG(Error) << "store commit failed: " << dbError;
      for (auto& op : batch)
        op->done.set_value(Unexpected(err(Errc::Internal, "store: " + dbError)));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(deliverMu_);
      {
        std::lock_guard<std::mutex> rl(revMu_);
        revision_ = rev;
      }
      revCv_.notify_all();
      if (!events.empty()) deliver(events);
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->done.set_value(std::move(results[i]));
  }

  // Called with deliverMu_ held.
  void deliver(const std::vector<Event>& events) {
    std::lock_guard<std::mutex> wl(watchersMu_);
    for (auto& w : watchers_) {
      std::vector<Event> mine;
      for (const auto& ev : events)
        if (ev.kv.key.compare(0, w.prefix.size(), w.prefix) == 0) mine.push_back(ev);
      if (!mine.empty()) w.callback(mine);
    }
  }

  Result<int64_t> doCompact(int64_t revision) {
    int64_t current;
    {
      std::lock_guard<std::mutex> lock(revMu_);
      current = revision_;
      if (revision <= compacted_) return compacted_;
    }
    if (revision > current) revision = current;
    Statement del(conn_.get(), "DELETE FROM log WHERE rev <= ?");
    std::string e = conn_.exec("BEGIN IMMEDIATE");
    if (e.empty()) {
      del.bind(1, revision);
      if (del.step() != SQLITE_DONE) e = conn_.lastError();
    }
    if (e.empty()) {
      setMeta_.reset();
      setMeta_.bind(1, revision).bind(2, std::string_view("compacted"));
      if (setMeta_.step() != SQLITE_DONE) e = conn_.lastError();
      setMeta_.reset();
    }
    if (e.empty()) e = conn_.exec("COMMIT");
    if (!e.empty()) {
      conn_.exec("ROLLBACK");
      return Unexpected(err(Errc::Internal, "compact: " + e));
    }
    {
      std::lock_guard<std::mutex> lock(revMu_);
      compacted_ = revision;
    }
    // Give freed pages back to the file system and keep the WAL from growing.
    conn_.exec("PRAGMA incremental_vacuum;");
    conn_.exec("PRAGMA wal_checkpoint(TRUNCATE);");
    return revision;
  }

  SqliteOptions options_;
  Connection conn_;  // owned by the writer thread after init()
  Statement sel_, upsert_, del_, logIns_, setMeta_;
  std::thread writer_;

  std::mutex queueMu_;  // guards queue_, compactRequests_, stopping_
  std::condition_variable queueCv_;
  std::deque<std::unique_ptr<Op>> queue_;
  std::vector<CompactRequest> compactRequests_;
  bool stopping_ = false;

  std::mutex revMu_;  // guards revision_, compacted_
  std::condition_variable revCv_;
  int64_t revision_ = 0;
  int64_t compacted_ = 0;

  std::mutex deliverMu_;   // held while events are delivered or a watch is being set up
  std::mutex watchersMu_;  // guards watchers_
  std::list<WatchEntry> watchers_;

  std::mutex readersMu_;  // guards readers_
  std::vector<std::unique_ptr<Reader>> readers_;
};

SqliteWatch::~SqliteWatch() { store_->removeWatch(it_); }

}  // namespace

Result<StorePtr> openSqliteStore(const SqliteOptions& options) {
  auto store = std::make_unique<SqliteStore>(options);
  if (auto e = store->init(); !e.empty()) return Unexpected(err(Errc::Internal, e));
  return StorePtr(std::move(store));
}

const char* errcName(Errc code) {
  switch (code) {
    case Errc::NotFound:
      return "NotFound";
    case Errc::AlreadyExists:
      return "AlreadyExists";
    case Errc::Conflict:
      return "Conflict";
    case Errc::Compacted:
      return "Compacted";
    case Errc::FutureRevision:
      return "FutureRevision";
    case Errc::Unavailable:
      return "Unavailable";
    case Errc::Internal:
      return "Internal";
  }
  return "Unknown";
}

}  // namespace podium::store
