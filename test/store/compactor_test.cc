#include "podium/store/compactor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "podium/store/sqlite_store.h"

namespace podium::store {
namespace {

class FakeClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return {}; }
  std::chrono::steady_clock::time_point monotonic() const override { return t; }
  std::chrono::steady_clock::time_point t{};
};

TEST(Compactor, CompactsToTheRevisionSeenOneRetentionAgo) {
  auto dir =
      std::filesystem::temp_directory_path() / ("podium-compactor-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto s = openSqliteStore(SqliteOptions{(dir / "db").string(), false});
  ASSERT_TRUE(s);
  Store& store = **s;
  FakeClock clock;
  // The loop's interval is far longer than the test, so only the explicit tick()s run.
  Compactor c(store, clock, std::chrono::hours(1), std::chrono::minutes(5));
  ASSERT_TRUE(store.create("/a", "1"));
  c.tick();  // t=0: sample rev 1
  clock.t += std::chrono::minutes(3);
  ASSERT_TRUE(store.create("/b", "1"));
  c.tick();  // t=3m: sample rev 2; nothing old enough yet
  EXPECT_EQ(store.compactedRevision(), 0);
  clock.t += std::chrono::minutes(3);
  ASSERT_TRUE(store.create("/c", "1"));
  c.tick();  // t=6m: the t=0 sample (rev 1) is past retention
  EXPECT_EQ(store.compactedRevision(), 1);
  EXPECT_EQ(store.get("/a")->value, "1");  // compaction drops history, never current state
  s->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace podium::store
