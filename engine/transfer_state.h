// The state one TransferRunner::Run shares between its threads (internal to engine): the
// transfers (Xfer), the network sinks the Hub's loop thread calls, and the hashing thread.
//
// Threads: the control thread (TransferRunner::Run) owns the decisions; the Hub's loop thread
// calls Sink::OnData/OnDone (pwrite into the partial, or memcpy into a small file's buffer);
// one hashing thread (HashLoop) reads back each transfer's contiguous prefix and hashes it.
// Everything marked "guarded" is under `mu`; `cv` wakes the control thread (wake = true) and
// the hashing thread (a new job, or stop).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/byte_range.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/status.h"
#include "engine/planner.h"
#include "net/hub.h"
#include "storage/partial_file.h"

namespace modelsync::engine {

// Bytes the hashing thread reads back per step.
inline constexpr uint64_t kHashChunk = 4ull << 20;

// One content being fetched (a FilePlan of kind kFetch or kResume).
struct Xfer {
  const FilePlan* fp = nullptr;
  uint64_t id = 0;      // transfer id (partial file name); changes on an integrity retry
  bool memory = false;  // small file: fetched into `buffer`, no partial file
  std::unique_ptr<storage::PartialFile> file;
  std::string buffer;

  // Guarded by TransferShared::mu.
  RangeSet received;   // written to the file (or buffer): committed or not
  RangeSet committed;  // durable and recorded
  std::deque<ByteRange> todo;
  int in_flight = 0;
  std::vector<uint64_t> fetch_ids;
  uint64_t unsynced = 0;
  uint64_t written = 0;  // bytes written to the file by this run
  uint64_t kicked = 0;   // `written` at the last StartWriteback (control thread only)
  uint64_t dropped = 0;  // prefix whose pages were dropped (control thread only)
  Clock::TimePoint last_sync;  // set when the transfer is created
  bool started = false;  // partial created and TransferStarted recorded
  bool done = false;
  int integrity_failures = 0;

  // Hashing: the hashing thread owns hasher while hash_busy; `hashed` is the prefix hashed.
  std::unique_ptr<Hasher> hasher;
  std::atomic<uint64_t> hashed{0};
  std::atomic<bool> hash_busy{false};
  Status hash_error;  // set by the hashing thread before clearing hash_busy
};


struct TransferShared {
  std::mutex mu;
  std::condition_variable cv;
  bool wake = false;
  Status failure;  // first failure (guarded by mu)
  std::atomic<uint64_t> received_bytes{0};

  class Sink final : public net::FetchSink {
   public:
    Sink(TransferShared* impl, Xfer* x, ByteRange range, Clock::TimePoint now)
        : mark_next(range.begin), mark_time(now), next(range.begin), end(range.end), impl_(impl), x_(x) {}
    Status OnData(uint64_t offset, const char* data, size_t n) override {
      // A split (engine/transfer_parallel.h) may have moved `end` down: write up to it, then
      // end this fetch; the new fetch has the rest. (If the split raced with this piece, a
      // few bytes may be written by both: the same bytes at the same offsets.)
      const uint64_t stop = end.load();
      if (offset >= stop) return Status::Cancelled("split");
      const bool cut = offset + n > stop;
      if (cut) n = static_cast<size_t>(stop - offset);
      if (x_->memory) {
        if (offset + n > x_->buffer.size())
          return Status::Permanent("server sent bytes past the end of " + x_->fp->path);
        std::memcpy(x_->buffer.data() + offset, data, n);
      } else {
        MS_RETURN_IF_ERROR(x_->file->Write(offset, std::string_view(data, n)));
      }
      impl_->received_bytes += n;
      std::lock_guard<std::mutex> lock(impl_->mu);
      x_->received.Add({offset, offset + n});
      x_->unsynced += n;
      x_->written += n;
      next.store(offset + n);
      return cut ? Status::Cancelled("split") : Status::Ok();
    }
    void OnDone(Status status) override {
      std::lock_guard<std::mutex> lock(impl_->mu);
      --x_->in_flight;
      finished = true;
      if (!status.ok() && !status.IsCancelled() && impl_->failure.ok())
        impl_->failure = status.With(x_->fp->path);
      impl_->wake = true;
      impl_->cv.notify_all();
    }
    bool finished = false;  // guarded by TransferShared::mu
    // Control thread: where the fetch was at mark_time (its launch, or the moment a
    // connection fell idle), to measure its rate since.
    uint64_t mark_next;
    Clock::TimePoint mark_time;
    void Mark(Clock::TimePoint now) {
      mark_next = next.load();
      mark_time = now;
    }
    // The next byte expected and the end of this fetch's range (lowered by a split).
    std::atomic<uint64_t> next;
    std::atomic<uint64_t> end;

   private:
    TransferShared* impl_;
    Xfer* x_;

   public:
    Xfer* xfer() const { return x_; }
  };

  std::list<std::unique_ptr<Xfer>> xfers;
  std::list<std::unique_ptr<Sink>> sinks;
  int in_flight_total = 0;

  // Hashing thread.
  std::thread hasher_thread;
  std::deque<std::pair<Xfer*, uint64_t>> hash_jobs;  // guarded by mu
  bool stop_hashing = false;

  TransferShared() = default;
  TransferShared(const TransferShared&) = delete;
  TransferShared& operator=(const TransferShared&) = delete;
  ~TransferShared() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop_hashing = true;
    }
    cv.notify_all();
    if (hasher_thread.joinable()) hasher_thread.join();
  }

  // The hashing thread's body: hashes each job's prefix (read back from the partial file)
  // until stop_hashing.
  void HashLoop();

};


}  // namespace modelsync::engine
