#pragma once

// Minimal leveled logging to stderr: `PODIUM_LOG(Info) << "api ready on " << port;`.
// Thread-safe: each statement is written with one write(2).

#include <sstream>
#include <string_view>

namespace podium::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void setLevel(Level level);
Level level();
bool parseLevel(std::string_view text, Level* out);

class Line {
 public:
  Line(Level level, const char* file, int line);
  ~Line();
  template <class T>
  Line& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  std::ostringstream os_;
};

}  // namespace podium::log

namespace podium::log {
// Lets the macro be one expression (glog's trick), so it is safe inside an unbraced if/else.
struct Voidify {
  void operator&(const Line&) {}
};
}  // namespace podium::log

#define PODIUM_LOG(lvl)                                \
  (::podium::log::Level::lvl < ::podium::log::level()) \
      ? (void)0                                        \
      : ::podium::log::Voidify() &                     \
            ::podium::log::Line(::podium::log::Level::lvl, __FILE__, __LINE__)
