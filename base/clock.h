// Clock: the one source of time for the engine, so tests can run on a fake one.
//
// Now() is monotonic (for timers, rates and backoff); WallMs() is Unix time in ms (for
// event timestamps). SystemClock is thread-safe; FakeClock is thread-safe and only moves
// when told to (Advance), so a failing seed replays exactly.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace modelsync {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  virtual int64_t WallMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  int64_t WallMs() const override;
  static SystemClock* Default();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ms = 1'700'000'000'000) : wall_ms_(wall_ms) {}
  TimePoint Now() const override { return TimePoint(Duration(ns_.load())); }
  int64_t WallMs() const override { return wall_ms_.load() + ns_.load() / 1'000'000; }
  void Advance(Duration d) { ns_ += d.count(); }

 private:
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> ns_{0};
};

}  // namespace modelsync
