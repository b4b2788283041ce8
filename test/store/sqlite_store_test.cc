#include "podium/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

namespace podium::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("podium-store-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    auto s = openSqliteStore(SqliteOptions{(dir_ / "state.db").string(), false});
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }
  std::filesystem::path dir_;
  StorePtr store_;
};

// Collects watch events and lets a test wait for a count.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;
  WatchCallback callback() {
    return [this](const std::vector<Event>& evs) {
      std::lock_guard<std::mutex> lock(mu);
      events.insert(events.end(), evs.begin(), evs.end());
      cv.notify_all();
    };
  }
  bool waitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return events.size() >= n; });
  }
};

TEST_F(SqliteStoreTest, CreateGetUpdateDelete) {
  auto r1 = store_->create("/a", "one");
  ASSERT_TRUE(r1);
  EXPECT_EQ(*r1, 1);
  EXPECT_EQ(store_->create("/a", "again").error().code, Errc::AlreadyExists);

  auto kv = store_->get("/a");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->value, "one");
  EXPECT_EQ(kv->createRevision, 1);
  EXPECT_EQ(kv->modRevision, 1);

  auto stale = store_->update("/a", "two", 0);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::Conflict);
  EXPECT_EQ(stale.error().currentRevision, 1);

  auto r2 = store_->update("/a", "two", 1);
  ASSERT_TRUE(r2);
  EXPECT_EQ(*r2, 2);
  EXPECT_EQ(store_->get("/a")->value, "two");
  EXPECT_EQ(store_->get("/a")->createRevision, 1);

  EXPECT_EQ(store_->remove("/a", 1).error().code, Errc::Conflict);
  auto r3 = store_->remove("/a", 2);
  ASSERT_TRUE(r3);
  EXPECT_EQ(*r3, 3);
  EXPECT_EQ(store_->get("/a").error().code, Errc::NotFound);
  EXPECT_EQ(store_->update("/a", "x", 2).error().code, Errc::NotFound);
  EXPECT_EQ(store_->currentRevision(), 3);
}

TEST_F(SqliteStoreTest, ListByPrefixIsSortedAndCarriesRevision) {
  ASSERT_TRUE(store_->create("/r/pods/b", "b"));
  ASSERT_TRUE(store_->create("/r/pods/a", "a"));
  ASSERT_TRUE(store_->create("/r/podsx/c", "c"));
  ASSERT_TRUE(store_->create("/r/svc/d", "d"));
  auto l = store_->list("/r/pods/");
  ASSERT_TRUE(l);
  ASSERT_EQ(l->items.size(), 2u);
  EXPECT_EQ(l->items[0].key, "/r/pods/a");
  EXPECT_EQ(l->items[1].key, "/r/pods/b");
  EXPECT_EQ(l->revision, 4);
  EXPECT_EQ(store_->list("")->items.size(), 4u);
}

TEST_F(SqliteStoreTest, RevisionAndDataSurviveReopen) {
  ASSERT_TRUE(store_->create("/k", "v"));
  ASSERT_TRUE(store_->update("/k", "v2", 1));
  reopen();
  EXPECT_EQ(store_->currentRevision(), 2);
  EXPECT_EQ(store_->get("/k")->value, "v2");
  EXPECT_EQ(*store_->create("/k2", "x"), 3);
}

TEST_F(SqliteStoreTest, WatchReplaysHistoryThenLiveInOrder) {
  ASSERT_TRUE(store_->create("/w/a", "1"));
  ASSERT_TRUE(store_->create("/other", "x"));
  ASSERT_TRUE(store_->update("/w/a", "2", 1));
  Collector c;
  auto w = store_->watch("/w/", 0, c.callback());
  ASSERT_TRUE(w);
  ASSERT_TRUE(c.waitFor(2));
  ASSERT_TRUE(store_->remove("/w/a", 0));
  ASSERT_TRUE(store_->create("/w/b", "3"));
  ASSERT_TRUE(c.waitFor(4));
  std::lock_guard<std::mutex> lock(c.mu);
  ASSERT_EQ(c.events.size(), 4u);
  EXPECT_TRUE(c.events[0].created);
  EXPECT_EQ(c.events[1].kv.value, "2");
  EXPECT_EQ(c.events[1].prevValue, "1");
  EXPECT_EQ(c.events[2].type, EventType::Delete);
  EXPECT_EQ(c.events[2].kv.value, "2");
  EXPECT_EQ(c.events[2].kv.modRevision, 4);
  EXPECT_EQ(c.events[3].kv.key, "/w/b");
  for (size_t i = 1; i < c.events.size(); ++i)
    EXPECT_LT(c.events[i - 1].kv.modRevision, c.events[i].kv.modRevision);
}

TEST_F(SqliteStoreTest, WatchFromCompactedRevisionIsRefused) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_->create("/c/" + std::to_string(i), "v"));
  ASSERT_TRUE(store_->compact(3));
  EXPECT_EQ(store_->compactedRevision(), 3);
  Collector c;
  auto old = store_->watch("/c/", 2, c.callback());
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, Errc::Compacted);
  auto ok = store_->watch("/c/", 3, c.callback());
  ASSERT_TRUE(ok);
  EXPECT_TRUE(c.waitFor(2));
  EXPECT_EQ(store_->watch("/c/", 99, c.callback()).error().code, Errc::FutureRevision);
  ok->reset();  // watches end before their store
  reopen();
  EXPECT_EQ(store_->compactedRevision(), 3);
}

TEST_F(SqliteStoreTest, ConcurrentWritersGetUniqueRevisionsAndAllAreDurable) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<int64_t> revisions;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->create("/cc/" + std::to_string(t) + "/" + std::to_string(i), "v");
        ASSERT_TRUE(r);
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(revisions.insert(*r).second);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(revisions.size(), size_t{kThreads * kPerThread});
  reopen();
  EXPECT_EQ(store_->list("/cc/")->items.size(), size_t{kThreads * kPerThread});
}

TEST_F(SqliteStoreTest, ConcurrentUpdatesOfOneKeyConflictInsteadOfLosingWrites) {
  ASSERT_TRUE(store_->create("/counter", "0"));
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        while (true) {
          auto cur = store_->get("/counter");
          ASSERT_TRUE(cur);
          int v = std::stoi(cur->value);
          auto r = store_->update("/counter", std::to_string(v + 1), cur->modRevision);
          if (r) break;
          ASSERT_EQ(r.error().code, Errc::Conflict);
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store_->get("/counter")->value, "100");
}

TEST_F(SqliteStoreTest, CompactionGivesSpaceBack) {
  std::string big(8192, 'x');
  ASSERT_TRUE(store_->create("/big", big));
  for (int i = 0; i < 2000; ++i)
    ASSERT_TRUE(store_->update("/big", big + std::to_string(i), i + 1));
  auto size = [&] {
    uintmax_t total = 0;
    for (const char* f : {"state.db", "state.db-wal"}) {
      std::error_code ec;
      auto n = std::filesystem::file_size(dir_ / f, ec);
      if (!ec) total += n;
    }
    return total;
  };
  uintmax_t before = size();
  EXPECT_GT(before, 10u * 1024 * 1024);  // 2000 revisions of 8 KiB are kept as history
  ASSERT_TRUE(store_->compact(store_->currentRevision()));
  EXPECT_LT(size(), 2u * 1024 * 1024) << "before " << before;
  EXPECT_EQ(store_->get("/big")->value, big + "1999");
}

TEST_F(SqliteStoreTest, DestroyedWatchGetsNoMoreEvents) {
  Collector c;
  {
    auto w = store_->watch("/", 0, c.callback());
    ASSERT_TRUE(w);
    ASSERT_TRUE(store_->create("/x", "1"));
    ASSERT_TRUE(c.waitFor(1));
  }
  ASSERT_TRUE(store_->create("/y", "1"));
  std::lock_guard<std::mutex> lock(c.mu);
  EXPECT_EQ(c.events.size(), 1u);
}

}  // namespace
}  // namespace podium::store
