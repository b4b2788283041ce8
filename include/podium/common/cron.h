#pragma once

// Cron schedules as a Kubernetes CronJob takes them (robfig/cron's standard parser, which the
// CronJob controller uses): five fields — minute, hour, day of month, month, day of week — each
// `*`, `?` (day fields), a value, a range `a-b`, a list `a,b` and a step `*/n` or `a-b/n`, with
// month names JAN..DEC and day names SUN..SAT; or one of @yearly, @annually, @monthly, @weekly,
// @daily, @midnight, @hourly. Day of month and day of week: when both are restricted, a day
// matching either runs (cron's rule); otherwise both must match. Times are computed in an IANA
// time zone (the tz database under /usr/share/zoneinfo), UTC by default.

#include <bitset>
#include <chrono>
#include <optional>
#include <string>

#include "podium/common/expected.h"

namespace podium::cron {

using TimePoint = std::chrono::system_clock::time_point;

class Schedule {
 public:
  // The schedule, or what is wrong with it (naming the field).
  static Expected<Schedule, std::string> parse(const std::string& spec);

  // The first scheduled time strictly after `t`, in `timeZone` ("" = UTC); nullopt when there
  // is none within five years (a 30th of February) or the zone is unknown.
  std::optional<TimePoint> next(TimePoint t, const std::string& timeZone = "") const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_;
  bool anyDay_ = false, anyWeekday_ = false;  // the field was * or ?
};

// Whether `name` is a time zone of the tz database ("" and "UTC" are).
bool knownTimeZone(const std::string& name);

}  // namespace podium::cron
