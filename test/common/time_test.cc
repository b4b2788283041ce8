#include "podium/common/time.h"

#include <gtest/gtest.h>

namespace podium::timefmt {
namespace {

TEST(Time, Rfc3339RoundTrip) {
  auto t = parseRfc3339("2024-05-01T10:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(rfc3339(*t), "2024-05-01T10:00:00Z");
  auto off = parseRfc3339("2024-05-01T12:00:00.5+02:00");
  ASSERT_TRUE(off);
  EXPECT_EQ(rfc3339(*off), "2024-05-01T10:00:00Z");
  EXPECT_FALSE(parseRfc3339("2024-05-01 10:00:00"));
  EXPECT_FALSE(parseRfc3339("garbage"));
}

TEST(Time, HumanDuration) {
  using std::chrono::seconds;
  EXPECT_EQ(humanDuration(seconds(5)), "5s");
  EXPECT_EQ(humanDuration(seconds(119)), "119s");
  EXPECT_EQ(humanDuration(seconds(200)), "3m20s");
  EXPECT_EQ(humanDuration(seconds(45 * 60)), "45m");
  EXPECT_EQ(humanDuration(seconds(3 * 3600 + 20 * 60)), "3h20m");
  EXPECT_EQ(humanDuration(seconds(20 * 3600)), "20h");
  EXPECT_EQ(humanDuration(seconds(3 * 86400 + 5 * 3600)), "3d5h");
  EXPECT_EQ(humanDuration(seconds(45 * 86400)), "45d");
}

TEST(Time, GoDuration) {
  EXPECT_EQ(goDuration(std::chrono::hours(1)), "1h0m0s");
  EXPECT_EQ(goDuration(std::chrono::seconds(30)), "30s");
  EXPECT_EQ(goDuration(std::chrono::milliseconds(1500)), "1.5s");
}

}  // namespace
}  // namespace podium::timefmt
