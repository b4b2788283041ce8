#pragma once

// Exponential back-off with jitter, client-go's wait.Backoff: the first delay is `initial`,
// each next one `factor` times the last up to `cap`, and every delay gets a random extra of up
// to `jitter` times itself, so that many clients retrying one server spread out.

#include <chrono>

#include "podium/common/random.h"

namespace podium {

struct BackoffPolicy {
  std::chrono::milliseconds initial{800};
  double factor = 2.0;
  double jitter = 1.0;
  std::chrono::milliseconds cap{30000};
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy = {}, Random& random = realRandom())
      : policy_(policy), random_(random) {}

  // The delay to wait before the next attempt (and steps the delay up).
  std::chrono::milliseconds next() {
    auto base = current_.count() == 0 ? policy_.initial : current_;
    current_ = std::min(policy_.cap, std::chrono::milliseconds(static_cast<int64_t>(
                                         static_cast<double>(base.count()) * policy_.factor)));
    double extra = policy_.jitter > 0 ? random_.uniform() * policy_.jitter : 0.0;
    return std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(base.count()) * (1.0 + extra)));
  }
  // After a success: the next failure starts again from `initial`.
  void reset() { current_ = std::chrono::milliseconds(0); }

 private:
  BackoffPolicy policy_;
  Random& random_;
  std::chrono::milliseconds current_{0};
};

}  // namespace podium
