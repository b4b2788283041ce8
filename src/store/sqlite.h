#pragma once

// Thin RAII helpers over the sqlite3 C API, private to the store.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace podium::store::sqlite {

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, const char* sql);
  ~Statement();
  Statement(Statement&& o) noexcept : stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Statement& bind(int index, std::string_view text);
  Statement& bindBlob(int index, std::string_view bytes);
  Statement& bind(int index, int64_t value);
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step();
  void reset();
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens (creating if needed) with the given flags; returns an error message or "".
  std::string open(const std::string& path, bool readOnly);
  // Executes SQL with no results; returns an error message or "".
  std::string exec(const char* sql);
  sqlite3* get() const { return db_; }
  std::string lastError() const { return db_ ? sqlite3_errmsg(db_) : "no database"; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace podium::store::sqlite
