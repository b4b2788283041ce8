#include "podium/client/workqueue.h"

#include <gtest/gtest.h>

#include "support/fake_client.h"

namespace podium::client {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;

TEST(WorkQueueTest, AKeyIsQueuedOnceAndNeverToTwoWorkers) {
  WorkQueue q;
  q.add("a");
  q.add("a");
  q.add("b");
  EXPECT_EQ(q.length(), 2u);
  std::string key;
  ASSERT_TRUE(q.get(&key));
  EXPECT_EQ(key, "a");
  q.add("a");  // while processing: queued again only after done()
  EXPECT_EQ(q.length(), 1u);
  ASSERT_TRUE(q.get(&key));
  EXPECT_EQ(key, "b");
  EXPECT_EQ(q.length(), 0u);
  q.done("a");
  EXPECT_TRUE(q.queued("a"));
}

TEST(WorkQueueTest, DelaysAreMeasuredOnTheInjectedClock) {
  FakeClock clock;
  WorkQueue q(milliseconds(5), milliseconds(1000), clock);
  q.addAfter("a", milliseconds(500));
  EXPECT_FALSE(q.queued("a"));
  EXPECT_EQ(q.delayOf("a"), milliseconds(500));
  // A second delay for the same key keeps the earlier one.
  q.addAfter("a", milliseconds(200));
  EXPECT_EQ(q.delayOf("a"), milliseconds(200));
  q.addAfter("a", milliseconds(900));
  EXPECT_EQ(q.delayOf("a"), milliseconds(200));
  clock.advance(milliseconds(199));
  EXPECT_FALSE(q.queued("a"));
  clock.advance(milliseconds(1));
  EXPECT_TRUE(q.queued("a"));
  EXPECT_FALSE(q.delayOf("a"));
}

TEST(WorkQueueTest, RetriesBackOffExponentiallyUpToTheCapAndForgetResets) {
  FakeClock clock;
  WorkQueue q(milliseconds(5), milliseconds(40), clock);
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) {
    q.addRateLimited("k");
    delays.push_back(q.delayOf("k")->count());
    clock.advance(milliseconds(1000));
    std::string key;
    ASSERT_TRUE(q.get(&key));
    q.done(key);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{5, 10, 20, 40, 40, 40}));
  EXPECT_EQ(q.retries("k"), 6);
  q.forget("k");
  EXPECT_EQ(q.retries("k"), 0);
  q.addRateLimited("k");
  EXPECT_EQ(q.delayOf("k"), milliseconds(5));
}

TEST(WorkQueueTest, ShutdownWakesWaitersAndRefusesWork) {
  WorkQueue q;
  std::thread waiter([&] {
    std::string key;
    EXPECT_FALSE(q.get(&key));
  });
  q.shutdown();
  waiter.join();
  q.add("late");
  EXPECT_EQ(q.length(), 0u);
}

}  // namespace
}  // namespace podium::client
