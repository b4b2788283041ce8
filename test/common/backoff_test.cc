#include "podium/common/backoff.h"

#include <gtest/gtest.h>

namespace podium {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesUpToTheCapWithBoundedJitterAndResets) {
  auto random = seededRandom(42);
  Backoff b(BackoffPolicy{milliseconds(100), 2.0, 0.5, milliseconds(1000)}, *random);
  int64_t base = 100;
  for (int i = 0; i < 8; ++i) {
    int64_t d = b.next().count();
    EXPECT_GE(d, base) << i;
    EXPECT_LE(d, base + base / 2) << i;
    base = std::min<int64_t>(base * 2, 1000);
  }
  b.reset();
  EXPECT_LE(b.next().count(), 150);
}

TEST(BackoffTest, WithoutJitterTheDelaysAreExact) {
  auto random = seededRandom(1);
  Backoff b(BackoffPolicy{milliseconds(10), 3.0, 0.0, milliseconds(100)}, *random);
  EXPECT_EQ(b.next(), milliseconds(10));
  EXPECT_EQ(b.next(), milliseconds(30));
  EXPECT_EQ(b.next(), milliseconds(90));
  EXPECT_EQ(b.next(), milliseconds(100));
}

TEST(RandomTest, ASeededSequenceRepeats) {
  auto a = seededRandom(5), b = seededRandom(5);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a->next(), b->next());
  double u = a->uniform();
  EXPECT_GE(u, 0.0);
  EXPECT_LT(u, 1.0);
  EXPECT_LT(a->below(7), 7u);
}

}  // namespace
}  // namespace podium
