// The hashing thread's reads from a partial file, one span ahead (engine/transfer_state.h).
//
// Bytes the memory window had no room for are on the file only, and the hashing thread reads
// them back to hash them (PartialFile::ReadInto: past the page cache where the file system
// takes O_DIRECT, so nothing is copied and no page is left to drop). A direct read waits for
// the disk, so while one span is hashed the next is read, on a thread of its own, into a
// second buffer: the hashing goes at the speed of the slower of the two instead of their sum
// (a far link's read-back: 850 MiB of 1 GiB).
//
// One user thread (the hashing thread); the reading thread starts at the first Begin.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "storage/partial_file.h"

namespace modelsync::engine {

class ReadAhead {
 public:
  // Spans of at most max_span bytes.
  explicit ReadAhead(size_t max_span) : max_span_(max_span) {}
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // [offset, offset+n) of file (n <= max_span): the span begun last if it is this one
  // (waiting for it), else read now. The bytes stay valid until the next Read.
  Result<const char*> Read(storage::PartialFile* file, uint64_t offset, size_t n);
  // Starts reading [offset, offset+n) of file into the buffer Read did not hand out last (the
  // bytes Read returned stay as they are). The bytes must be on the file and stay as they are
  // until read (received bytes are never written again: engine/transfer_state.h).
  void Begin(storage::PartialFile* file, uint64_t offset, size_t n);
  // Waits for a read begun and not taken by Read (before file may be closed).
  void Settle();

 private:
  struct Span {
    storage::PartialFile* file = nullptr;
    uint64_t offset = 0;
    size_t n = 0;
  };
  char* Buffer(int i);
  void Loop();
  // Waits until no read is in flight (lock held).
  void Wait(std::unique_lock<std::mutex>& lock);

  const size_t max_span_;
  char* buffers_[2] = {nullptr, nullptr};  // aligned for direct reads; made when first used
  int handed_ = 0;  // the buffer Read handed out last
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;   // `begun` is being read into buffers_[1 - handed_]
  bool have_ = false;      // `begun` was read (status `begun_status`)
  bool stop_ = false;
  Span begun_;
  Status begun_status_;
  std::thread thread_;
};

}  // namespace modelsync::engine
