#include "net/rate_limiter.h"

#include <algorithm>

namespace modelsync::net {

RateLimiter::RateLimiter(boost::asio::io_context& io, const modelsync::Clock& clock,
                         std::function<void()> wake)
    : clock_(clock), timer_(io), wake_(std::move(wake)), last_(clock.Now()) {}

void RateLimiter::SetRate(uint64_t bytes_per_second) {
  Refill();
  rate_ = bytes_per_second;
  if (rate_ == 0) {
    boost::system::error_code ec;
    timer_.cancel(ec);
    timer_armed_ = false;
    wake_();
    return;
  }
  tokens_ = std::min(tokens_, static_cast<double>(rate_) / 10);
}

void RateLimiter::Refill() {
  auto now = clock_.Now();
  double dt = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  if (rate_ == 0) return;
  // Burst: a tenth of a second's worth (at least 16 KiB).
  double cap = std::max(static_cast<double>(rate_) / 10, 16384.0);
  tokens_ = std::min(cap, tokens_ + dt * static_cast<double>(rate_));
}

bool RateLimiter::ShouldPause() {
  if (rate_ == 0) return false;
  Refill();
  if (tokens_ > 0) return false;
  if (!timer_armed_) {
    timer_armed_ = true;
    auto wait = std::chrono::duration<double>((1.0 - tokens_) / static_cast<double>(rate_));
    timer_.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(wait) +
                         std::chrono::milliseconds(1));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      timer_armed_ = false;
      wake_();
    });
  }
  return true;
}

void RateLimiter::Consume(uint64_t n) {
  if (rate_ == 0) return;
  tokens_ -= static_cast<double>(n);
}

void RateLimiter::Stop() {
  boost::system::error_code ec;
  timer_.cancel(ec);
  rate_ = 0;
}

}  // namespace modelsync::net
