#include "podium/common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>

namespace podium::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
const char* name(Level l) {
  switch (l) {
    case Level::Debug:
      return "D";
    case Level::Info:
      return "I";
    case Level::Warn:
      return "W";
    case Level::Error:
      return "E";
  }
  return "?";
}
}  // namespace

void setLevel(Level level) { g_level.store(static_cast<int>(level)); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool parseLevel(std::string_view text, Level* out) {
  if (text == "debug")
    *out = Level::Debug;
  else if (text == "info")
    *out = Level::Info;
  else if (text == "warn")
    *out = Level::Warn;
  else if (text == "error")
    *out = Level::Error;
  else
    return false;
  return true;
}

Line::Line(Level level, const char* file, int line) {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  const char* base = std::strrchr(file, '/');
  os_ << name(level) << ' ' << buf << '.' << (ms < 100 ? (ms < 10 ? "00" : "0") : "") << ms << ' '
      << (base ? base + 1 : file) << ':' << line << "] ";
}

Line::~Line() {
  os_ << '\n';
  std::string s = os_.str();
  ssize_t ignored = ::write(2, s.data(), s.size());
  (void)ignored;
}

}  // namespace podium::log
