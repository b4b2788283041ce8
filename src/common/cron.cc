#include "podium/common/cron.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include <cctype>
#include <cstdint>
#include <vector>

#include "podium/common/strings.h"

namespace podium::cron {
namespace {

struct Field {
  const char* name;
  int min, max;
  std::vector<std::string> names;  // names[i] is value min + i
};

const Field kMinute{"minute", 0, 59, {}};
const Field kHour{"hour", 0, 23, {}};
const Field kDay{"day of month", 1, 31, {}};
const Field kMonth{
    "month",
    1,
    12,
    {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}};
const Field kWeekday{"day of week", 0, 6, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}};

Expected<int, std::string> value(const std::string& text, const Field& f) {
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < f.names.size(); ++i)
    if (f.names[i] == upper) return f.min + static_cast<int>(i);
  auto n = strings::parseInt(text);
  if (!n) return Unexpected("failed to parse " + std::string(f.name) + " value \"" + text + "\"");
  if (*n < f.min || *n > f.max)
    return Unexpected(std::string(f.name) + " value " + text + " is out of range [" +
                      std::to_string(f.min) + "-" + std::to_string(f.max) + "]");
  return static_cast<int>(*n);
}

// The field's values as bits (bit i = value i); `star` says it was * or ?.
Expected<uint64_t, std::string> parseField(const std::string& text, const Field& f, bool* star) {
  uint64_t bits = 0;
  *star = false;
  for (const auto& part : strings::split(text, ',')) {
    std::string range = part;
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string::npos) {
      range = part.substr(0, slash);
      auto s = strings::parseInt(part.substr(slash + 1));
      if (!s || *s <= 0)
        return Unexpected("bad step \"" + part.substr(slash + 1) + "\" in " + f.name);
      step = static_cast<int>(*s);
    }
    int lo, hi;
    if (range == "*" || range == "?") {
      lo = f.min;
      hi = f.max;
      if (step == 1) *star = true;
    } else if (auto dash = range.find('-'); dash != std::string::npos) {
      auto a = value(range.substr(0, dash), f);
      if (!a) return Unexpected(a.error());
      auto b = value(range.substr(dash + 1), f);
      if (!b) return Unexpected(b.error());
      lo = *a;
      hi = *b;
      if (lo > hi) return Unexpected("beginning of range after end: " + range);
    } else {
      auto a = value(range, f);
      if (!a) return Unexpected(a.error());
      lo = *a;
      hi = part.find('/') != std::string::npos ? f.max : *a;  // "a/n": from a to the end
    }
    for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << v;
  }
  if (bits == 0) return Unexpected(std::string("empty ") + f.name);
  return bits;
}

bool loadZone(const std::string& name, cctz::time_zone* tz) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") {
    *tz = cctz::utc_time_zone();
    return true;
  }
  // Names only from the database: no paths, no "Local".
  if (name == "Local" || name.find("..") != std::string::npos || name.front() == '/') return false;
  return cctz::load_time_zone(name, tz);
}

}  // namespace

Expected<Schedule, std::string> Schedule::parse(const std::string& spec) {
  std::string text(strings::trim(spec));
  if (text.rfind("TZ=", 0) == 0 || text.rfind("CRON_TZ=", 0) == 0)
    return Unexpected(std::string("cannot use TZ or CRON_TZ in schedule, use timeZone instead"));
  static const std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  if (!text.empty() && text.front() == '@') {
    std::string expanded;
    for (const auto& [macro, fields] : kMacros)
      if (text == macro) expanded = fields;
    if (expanded.empty())
      return Unexpected("unrecognized descriptor: " + text +
                        " (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)");
    text = expanded;
  }
  std::vector<std::string> fields;
  for (const auto& f : strings::split(text, ' '))
    if (!f.empty()) fields.push_back(f);
  if (fields.size() != 5)
    return Unexpected("expected exactly 5 fields, found " + std::to_string(fields.size()) + ": [" +
                      text + "]");
  Schedule s;
  bool star = false;
  auto minutes = parseField(fields[0], kMinute, &star);
  if (!minutes) return Unexpected(minutes.error());
  auto hours = parseField(fields[1], kHour, &star);
  if (!hours) return Unexpected(hours.error());
  auto days = parseField(fields[2], kDay, &s.anyDay_);
  if (!days) return Unexpected(days.error());
  auto months = parseField(fields[3], kMonth, &star);
  if (!months) return Unexpected(months.error());
  auto weekdays = parseField(fields[4], kWeekday, &s.anyWeekday_);
  if (!weekdays) return Unexpected(weekdays.error());
  s.minutes_ = std::bitset<60>(*minutes);
  s.hours_ = std::bitset<24>(*hours);
  s.days_ = std::bitset<32>(*days);
  s.months_ = std::bitset<13>(*months);
  s.weekdays_ = std::bitset<7>(*weekdays);
  return s;
}

std::optional<TimePoint> Schedule::next(TimePoint t, const std::string& timeZone) const {
  cctz::time_zone tz;
  if (!loadZone(timeZone, &tz)) return std::nullopt;
  auto secs = std::chrono::time_point_cast<cctz::seconds>(t);
  cctz::civil_minute from = cctz::civil_minute(cctz::convert(secs, tz)) + 1;
  cctz::civil_day day(from);
  for (int i = 0; i < 5 * 366; ++i, day += 1) {
    if (!months_[day.month()]) continue;
    int weekday = (static_cast<int>(cctz::get_weekday(day)) + 1) % 7;  // cron: 0 = Sunday
    bool dayOk = days_[day.day()], weekdayOk = weekdays_[weekday];
    if (!(anyDay_ || anyWeekday_ ? dayOk && weekdayOk : dayOk || weekdayOk)) continue;
    bool first = day == cctz::civil_day(from);
    for (int h = first ? from.hour() : 0; h < 24; ++h) {
      if (!hours_[h]) continue;
      for (int m = first && h == from.hour() ? from.minute() : 0; m < 60; ++m) {
        if (!minutes_[m]) continue;
        cctz::civil_second when(day.year(), day.month(), day.day(), h, m, 0);
        auto at = cctz::convert(when, tz);  // a time a DST change skips runs after it
        if (at > secs) return TimePoint(at);
      }
    }
  }
  return std::nullopt;
}

bool knownTimeZone(const std::string& name) {
  cctz::time_zone tz;
  return loadZone(name, &tz);
}

}  // namespace podium::cron
