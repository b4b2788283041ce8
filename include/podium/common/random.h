#pragma once

// Randomness comes in through this interface so tests can fix it (STYLE: randomness is
// injected): jitter on retries and polls, random choices among endpoints.

#include <cstdint>
#include <memory>

namespace podium {

class Random {
 public:
  virtual ~Random() = default;
  // A uniformly distributed 64-bit value.
  virtual uint64_t next() = 0;
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n) (0 when n is 0).
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
};

// The process's randomness, seeded from the system. Thread-safe; lives for the whole program.
Random& realRandom();

// A deterministic sequence from `seed` (for tests). Not thread-safe.
std::unique_ptr<Random> seededRandom(uint64_t seed);

}  // namespace podium
