#include "podium/common/cron.h"

#include <gtest/gtest.h>

#include "podium/common/time.h"

namespace podium::cron {
namespace {

TimePoint at(const std::string& rfc3339) { return *timefmt::parseRfc3339(rfc3339); }
std::string after(const std::string& spec, const std::string& from, const std::string& tz = "") {
  auto s = Schedule::parse(spec);
  if (!s) return "parse: " + s.error();
  auto n = s->next(at(from), tz);
  return n ? timefmt::rfc3339(*n) : "none";
}

TEST(Cron, FieldsRangesStepsListsAndNames) {
  EXPECT_EQ(after("*/1 * * * *", "2026-12-07T10:00:30Z"), "2026-12-07T10:01:00Z");
  EXPECT_EQ(after("* * * * *", "2026-12-07T10:01:00Z"), "2026-12-07T10:02:00Z");  // strictly after
  EXPECT_EQ(after("*/15 * * * *", "2026-12-07T10:16:00Z"), "2026-12-07T10:30:00Z");
  EXPECT_EQ(after("5,35 9-17/4 * * *", "2026-12-07T10:00:00Z"), "2026-12-07T13:05:00Z");
  EXPECT_EQ(after("0 0 1 JAN *", "2026-12-07T10:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(after("30 2 * * sat", "2026-12-07T10:00:00Z"), "2026-12-12T02:30:00Z");  // a Monday
  EXPECT_EQ(after("10/20 * * * *", "2026-12-07T10:31:00Z"), "2026-12-07T10:50:00Z");
  EXPECT_EQ(after("@hourly", "2026-12-07T10:00:00Z"), "2026-12-07T11:00:00Z");
  EXPECT_EQ(after("@weekly", "2026-12-07T10:00:00Z"), "2026-12-13T00:00:00Z");
  EXPECT_EQ(after("0 0 30 2 *", "2026-12-07T10:00:00Z"), "none");
}

TEST(Cron, DayOfMonthAndDayOfWeekEitherWhenBothRestricted) {
  // The 13th, or any Friday: Friday 2026-12-11 comes first.
  EXPECT_EQ(after("0 0 13 * 5", "2026-12-07T10:00:00Z"), "2026-12-11T00:00:00Z");
  // Only one restricted: both must hold (every day of the month that is a Friday).
  EXPECT_EQ(after("0 0 * * 5", "2026-12-07T10:00:00Z"), "2026-12-11T00:00:00Z");
  EXPECT_EQ(after("0 0 13 * ?", "2026-12-07T10:00:00Z"), "2026-12-13T00:00:00Z");
}

TEST(Cron, TimeZones) {
  // 09:00 in New York is 14:00 UTC in December (EST).
  EXPECT_EQ(after("0 9 * * *", "2026-12-07T10:00:00Z", "America/New_York"), "2026-12-07T14:00:00Z");
  EXPECT_EQ(after("0 9 * * *", "2026-07-07T10:00:00Z", "America/New_York"),
            "2026-07-07T13:00:00Z");  // EDT
  EXPECT_EQ(after("0 9 * * *", "2026-12-07T10:00:00Z", "Mars/Olympus"), "none");
  EXPECT_TRUE(knownTimeZone("Europe/Berlin"));
  EXPECT_TRUE(knownTimeZone(""));
  EXPECT_FALSE(knownTimeZone("Mars/Olympus"));
  EXPECT_FALSE(knownTimeZone("../../etc/passwd"));
}

TEST(Cron, BadSchedulesSayWhy) {
  EXPECT_EQ(after("* * * *", "2026-12-07T10:00:00Z"),
            "parse: expected exactly 5 fields, found 4: [* * * *]");
  EXPECT_EQ(after("61 * * * *", "2026-12-07T10:00:00Z"),
            "parse: minute value 61 is out of range [0-59]");
  EXPECT_EQ(after("* * * * 7", "2026-12-07T10:00:00Z"),
            "parse: day of week value 7 is out of range [0-6]");
  EXPECT_EQ(after("*/0 * * * *", "2026-12-07T10:00:00Z"), "parse: bad step \"0\" in minute");
  EXPECT_EQ(after("5-1 * * * *", "2026-12-07T10:00:00Z"),
            "parse: beginning of range after end: 5-1");
  EXPECT_EQ(after("@every 1h", "2026-12-07T10:00:00Z").substr(0, 34),
            "parse: unrecognized descriptor: @e");
  EXPECT_EQ(after("TZ=UTC * * * * *", "2026-12-07T10:00:00Z"),
            "parse: cannot use TZ or CRON_TZ in schedule, use timeZone instead");
  EXPECT_EQ(after("* * * FOO *", "2026-12-07T10:00:00Z"),
            "parse: failed to parse month value \"FOO\"");
}

}  // namespace
}  // namespace podium::cron
