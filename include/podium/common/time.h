#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podium {

// Time comes in through this interface so tests can control it (STYLE: clocks are injected).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  virtual std::chrono::steady_clock::time_point monotonic() const = 0;
};

// The real clock. Thread-safe; the instance lives for the whole program.
Clock& realClock();

namespace timefmt {
// RFC 3339 in UTC with second precision ("2024-05-01T10:00:00Z"), as metav1.Time marshals.
std::string rfc3339(std::chrono::system_clock::time_point t);
// RFC 3339 with microseconds ("…T10:00:00.123456Z"), as metav1.MicroTime marshals.
std::string rfc3339Micro(std::chrono::system_clock::time_point t);
// Parses RFC 3339 (fractional seconds and numeric offsets allowed).
std::optional<std::chrono::system_clock::time_point> parseRfc3339(std::string_view s);
// Kubernetes' HumanDuration ("5s", "3m20s", "45m", "3h20m", "20h", "3d5h", "45d", "2y100d").
std::string humanDuration(std::chrono::seconds d);
// Go's time.Duration.String() for whole seconds/minutes/hours ("1h0m0s", "30s").
std::string goDuration(std::chrono::nanoseconds d);
// Parses a Go/protobuf duration ("250ms", "5s", "1.5s", "1m30s", "2h"); nullopt when malformed.
std::optional<std::chrono::milliseconds> parseGoDuration(std::string_view s);
}  // namespace timefmt

}  // namespace podium
