#pragma once

// Helpers shared by the API unit tests.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "api/protobuf.h"
#include "podium/api/cacher.h"
#include "podium/api/resources.h"
#include "podium/store/sqlite_store.h"

namespace podium::api::testing {

inline std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// The built-in resources (one registry for the test binary).
inline const ResourceSet& builtinResources() {
  static ResourceRegistry registry;
  static ResourceSetPtr set = registry.snapshot();
  return *set;
}

// Resolves protobuf type metadata ("apps/v1", "Deployment") to a built-in schema.
inline ProtoTypeLookup builtinProtoTypes() {
  return [](const std::string& apiVersion, const std::string& kind) -> const schema::Type* {
    std::string group, version = apiVersion;
    if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
      group = apiVersion.substr(0, slash);
      version = apiVersion.substr(slash + 1);
    }
    auto r = builtinResources().findKind(group, version, kind);
    return r ? r->schema : nullptr;
  };
}

// A SQLite store in a directory of the current test's own and a watch cache over it, removed
// when it goes. `beforeStart` registers the cache's listeners.
struct TestStore {
  std::filesystem::path dir;
  store::StorePtr store;
  std::unique_ptr<Cacher> cacher;

  void open(const std::string& prefix, const std::function<void(Cacher&)>& beforeStart = {}) {
    dir = std::filesystem::temp_directory_path() /
          (prefix + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto s = store::openSqliteStore(store::SqliteOptions{(dir / "db").string(), false});
    ASSERT_TRUE(s);
    store = std::move(*s);
    cacher = std::make_unique<Cacher>(*store, 1000);
    if (beforeStart) beforeStart(*cacher);
    ASSERT_TRUE(cacher->start());
  }
  // After whatever uses the cache has gone.
  void close() {
    cacher.reset();
    store.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

}  // namespace podium::api::testing
