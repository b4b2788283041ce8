#include "podium/common/random.h"

#include <mutex>
#include <random>

namespace podium {
namespace {

class Mt : public Random {
 public:
  explicit Mt(uint64_t seed) : rng_(seed) {}
  uint64_t next() override { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

class Shared : public Random {
 public:
  Shared() : rng_(std::random_device{}()) {}
  uint64_t next() override {
    std::lock_guard<std::mutex> lock(mu_);
    return rng_();
  }

 private:
  std::mutex mu_;  // guards rng_
  std::mt19937_64 rng_;
};

}  // namespace

Random& realRandom() {
  static Shared shared;
  return shared;
}

std::unique_ptr<Random> seededRandom(uint64_t seed) { return std::make_unique<Mt>(seed); }

}  // namespace podium
