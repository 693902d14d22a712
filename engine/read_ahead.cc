#include "engine/read_ahead.h"

#include <cstdlib>

#include "base/platform.h"

namespace modelsync::engine {

ReadAhead::~ReadAhead() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::free(buffers_[0]);
  std::free(buffers_[1]);
}

char* ReadAhead::Buffer(int i) {
  if (!buffers_[i]) {
    const size_t a = platform::kDirectAlign;
    buffers_[i] = static_cast<char*>(std::aligned_alloc(a, (max_span_ + a - 1) / a * a));
  }
  return buffers_[i];
}

void ReadAhead::Wait(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return !pending_; });
}

Result<const char*> ReadAhead::Read(storage::PartialFile* file, uint64_t offset, size_t n) {
  if (n > max_span_)
    return Status::InvalidArgument("read-ahead span of " + std::to_string(n) + " bytes");
  std::unique_lock<std::mutex> lock(mu_);
  Wait(lock);
  const int spare = 1 - handed_;
  if (have_ && begun_.file == file && begun_.offset == offset && begun_.n == n) {
    have_ = false;
    handed_ = spare;  // (Begin read into the spare)
    MS_RETURN_IF_ERROR(begun_status_);
    return static_cast<const char*>(buffers_[spare]);
  }
  have_ = false;  // begun for a span not wanted after all
  handed_ = spare;
  char* buf = Buffer(spare);  // (no read is in flight, and none starts before the next Begin)
  lock.unlock();
  if (!buf) return Status::IOError("out of memory for a read-back buffer");
  MS_RETURN_IF_ERROR(file->ReadInto(offset, n, buf));
  return static_cast<const char*>(buf);
}

void ReadAhead::Begin(storage::PartialFile* file, uint64_t offset, size_t n) {
  if (n == 0 || n > max_span_) return;
  std::unique_lock<std::mutex> lock(mu_);
  Wait(lock);
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  begun_ = {file, offset, n};
  have_ = false;
  pending_ = true;
  cv_.notify_all();
}

void ReadAhead::Settle() {
  std::unique_lock<std::mutex> lock(mu_);
  Wait(lock);
  have_ = false;
}

void ReadAhead::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || pending_; });
    if (stop_) return;
    const Span span = begun_;
    char* buf = Buffer(1 - handed_);  // the spare: handed_ does not change while pending_
    lock.unlock();
    Status s = buf ? span.file->ReadInto(span.offset, span.n, buf)
                   : Status::IOError("out of memory for a read-back buffer");
    lock.lock();
    begun_status_ = s;
    have_ = true;
    pending_ = false;
    cv_.notify_all();
  }
}

}  // namespace modelsync::engine
