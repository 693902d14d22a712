// Random: the engine's one source of randomness (backoff and schedule jitter), seeded, so a
// failing seed replays exactly (STYLE.md "Under test everything runs ... with a fake clock").
//
// Nothing in base/, storage/, net/ or engine/ seeds from the OS: the real seed comes from the
// Env implementation (engine/env.h RealEnv), a test passes its own.
// Thread-safe (one mutex); copyable only as a seed (Fork).
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

namespace modelsync {

class Random {
 public:
  explicit Random(uint64_t seed) : seed_(seed), rng_(seed) {}
  Random(const Random&) = delete;
  Random& operator=(const Random&) = delete;

  uint64_t seed() const { return seed_; }
  // Uniform over all 64-bit values.
  uint64_t Next() {
    std::lock_guard<std::mutex> l(mu_);
    return rng_();
  }
  // Uniform in [0, 1).
  double Uniform() {
    std::lock_guard<std::mutex> l(mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  }
  // Uniform in [lo, hi] (lo <= hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

 private:
  const uint64_t seed_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace modelsync
