#include "podium/common/time.h"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace podium {
namespace {
class RealClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point monotonic() const override {
    return std::chrono::steady_clock::now();
  }
};
}  // namespace

Clock& realClock() {
  static RealClock clock;
  return clock;
}

namespace timefmt {

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string rfc3339Micro(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t tt = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(us % 1000000));
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (s.size() < 20) return std::nullopt;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6 &&
      std::sscanf(str.c_str(), "%4d-%2d-%2dt%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < str.size() && str[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < str.size() && isdigit(static_cast<unsigned char>(str[pos]))) {
      if (digits < 9) {
        nanos = nanos * 10 + (str[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset = 0;
  if (pos < str.size() && (str[pos] == 'Z' || str[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 <= str.size() && (str[pos] == '+' || str[pos] == '-')) {
    int oh, om;
    if (std::sscanf(str.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (oh * 60 + om) * 60 * (str[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != str.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::time_t tt = timegm(&tm);
  auto tp = std::chrono::system_clock::from_time_t(tt - offset);
  return tp + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                  std::chrono::nanoseconds(nanos));
}

std::string humanDuration(std::chrono::seconds d) {
  long long seconds = d.count();
  char buf[64];
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) {
    std::snprintf(buf, sizeof buf, "%llds", seconds);
    return buf;
  }
  long long minutes = seconds / 60;
  if (minutes < 10) {
    long long s = seconds % 60;
    if (s == 0)
      std::snprintf(buf, sizeof buf, "%lldm", minutes);
    else
      std::snprintf(buf, sizeof buf, "%lldm%llds", minutes, s);
    return buf;
  }
  if (minutes < 180) {
    std::snprintf(buf, sizeof buf, "%lldm", minutes);
    return buf;
  }
  long long hours = seconds / 3600;
  if (hours < 8) {
    long long m = minutes % 60;
    if (m == 0)
      std::snprintf(buf, sizeof buf, "%lldh", hours);
    else
      std::snprintf(buf, sizeof buf, "%lldh%lldm", hours, m);
  } else if (hours < 48) {
    std::snprintf(buf, sizeof buf, "%lldh", hours);
  } else if (hours < 24 * 8) {
    long long h = hours % 24;
    if (h == 0)
      std::snprintf(buf, sizeof buf, "%lldd", hours / 24);
    else
      std::snprintf(buf, sizeof buf, "%lldd%lldh", hours / 24, h);
  } else if (hours < 24 * 365 * 2) {
    std::snprintf(buf, sizeof buf, "%lldd", hours / 24);
  } else if (hours < 24 * 365 * 8) {
    long long dy = (hours / 24) % 365;
    if (dy == 0)
      std::snprintf(buf, sizeof buf, "%lldy", hours / 24 / 365);
    else
      std::snprintf(buf, sizeof buf, "%lldy%lldd", hours / 24 / 365, dy);
  } else {
    std::snprintf(buf, sizeof buf, "%lldy", hours / 24 / 365);
  }
  return buf;
}

std::optional<std::chrono::milliseconds> parseGoDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double v;
    try {
      v = std::stod(std::string(s.substr(start, i - start)));
    } catch (...) {
      return std::nullopt;
    }
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(u, i - u);
    double scale = unit == "ms"  ? 1
                   : unit == "s" ? 1e3
                   : unit == "m" ? 6e4
                   : unit == "h" ? 3.6e6
                                 : -1;
    if (scale < 0) return std::nullopt;
    total += v * scale;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

std::string goDuration(std::chrono::nanoseconds d) {
  long long ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  if (ns < 0) ns = -ns;
  long long totalSec = ns / 1000000000LL;
  long long frac = ns % 1000000000LL;
  long long h = totalSec / 3600, m = (totalSec / 60) % 60, s = totalSec % 60;
  char buf[96];
  std::string secStr;
  if (frac) {
    std::snprintf(buf, sizeof buf, "%lld.%09lld", s, frac);
    secStr = buf;
    while (secStr.back() == '0') secStr.pop_back();
  } else {
    secStr = std::to_string(s);
  }
  if (h)
    std::snprintf(buf, sizeof buf, "%lldh%lldm%ss", h, m, secStr.c_str());
  else if (m)
    std::snprintf(buf, sizeof buf, "%lldm%ss", m, secStr.c_str());
  else
    std::snprintf(buf, sizeof buf, "%ss", secStr.c_str());
  return sign + buf;
}

}  // namespace timefmt
}  // namespace podium
