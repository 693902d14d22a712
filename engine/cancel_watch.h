// CancelWatch: turns a cancel flag into a call (internal to engine).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace modelsync::engine {

// While alive, watches *flag (every 50 ms) and calls on_set once when it becomes true: a
// cancel must also stop a Resolve that is waiting out the hub's backoff.
class CancelWatch {
 public:
  CancelWatch(const std::atomic<bool>* flag, std::function<void()> on_set) {
    if (!flag) return;
    thread_ = std::thread([this, flag, on_set = std::move(on_set)] {
      std::unique_lock<std::mutex> l(mu_);
      while (!done_) {
        if (flag->load()) {
          on_set();
          return;
        }
        cv_.wait_for(l, std::chrono::milliseconds(50));
      }
    });
  }
  ~CancelWatch() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  CancelWatch(const CancelWatch&) = delete;
  CancelWatch& operator=(const CancelWatch&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace modelsync::engine
