#pragma once

#include <string>

#include "podium/store/store.h"

namespace podium::store {

struct SqliteOptions {
  std::string path;  // database file; created if missing
  // true: fsync the write-ahead log on every commit (survives power loss, like etcd).
  // false: synchronous=NORMAL (survives kill -9, may lose the last commits on power loss).
  bool fsyncEveryCommit = true;
  // Most writes folded into one transaction by group commit.
  size_t maxBatch = 1024;
};

// SQLite backend (WAL mode, one file). Writes are funnelled through one commit thread that
// folds concurrent writes into a single transaction (group commit), so N concurrent writers pay
// for one fsync. File format: docs/store-format.md.
Result<StorePtr> openSqliteStore(const SqliteOptions& options);

}  // namespace podium::store
