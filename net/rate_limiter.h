// RateLimiter: one token bucket shared by every fetch of a Hub (internal to net/).
//
// Fetches take tokens for the bytes they deliver; when the bucket is empty a fetch pauses
// (CURL_WRITEFUNC_PAUSE) and is woken by one timer once tokens are back. The rate can be
// changed live; 0 means unlimited. Loop thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "base/clock.h"

namespace modelsync::net {

class RateLimiter {
 public:
  // wake is called (on the loop) when paused fetches may continue. Tokens accrue on clock
  // (the Hub's; not owned); the wake-up timer waits real time.
  RateLimiter(boost::asio::io_context& io, const modelsync::Clock& clock,
              std::function<void()> wake);
  void SetRate(uint64_t bytes_per_second);
  // True when the caller must pause now; the wake callback follows later.
  bool ShouldPause();
  void Consume(uint64_t n);
  void Stop();

 private:
  void Refill();
  const modelsync::Clock& clock_;
  boost::asio::steady_timer timer_;
  std::function<void()> wake_;
  uint64_t rate_ = 0;
  double tokens_ = 0;
  modelsync::Clock::TimePoint last_;
  bool timer_armed_ = false;
};

}  // namespace modelsync::net
