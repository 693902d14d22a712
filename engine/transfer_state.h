// The state one TransferRunner::Run shares between its threads (internal to engine): the
// transfers (Xfer), the network sinks the Hub's loop thread calls, and the hashing thread.
//
// Threads: the control thread (TransferRunner::Run) owns the decisions; the Hub's loop thread
// calls Sink::Ready/OnData/OnDone (a copy into a memory block, or into a small file's buffer;
// a pwrite into the partial for spans that cannot have a block); kWriters writing threads
// (WriteLoop) write whole blocks to the partials; one hashing thread (HashLoop) hashes each
// transfer's contiguous prefix, from its blocks while they are in memory, else read back from
// the file. Everything marked "guarded" is under `mu`; `cv` wakes the control thread (wake =
// true), `write_cv` the writing threads, `hash_cv` the hashing thread (a job, or stop).
//
// The memory window (issue 20). A large transfer's bytes go from the network into blocks of
// kBlock bytes at kBlock-aligned offsets. Once whole, a block is written by a writing thread
// (through storage::PartialFile::WriteDirect: past the page cache where the file system takes
// O_DIRECT, an ordinary write elsewhere); only then is its span `received`, which is what the
// control thread syncs and records (write -> fdatasync -> RangesCommitted, as before). It is
// hashed from memory when the hashed prefix reaches it, and freed when written and hashed.
// So each byte is received straight into its block (Sink::Space: the range reader,
// net/range_reader.h, reads long ranges into the memory the sink lends) or, through any other
// transport, copied once into it (network buffer -> block, with streaming stores:
// base/copy.h), hashed once from memory and, with O_DIRECT, written once by DMA: no
// page-cache pages to fill, write back, drop and read back.
//
// At most kWindowBlocks blocks exist across all transfers, kFrontierBlocks of them kept for
// the block each transfer's hashed prefix waits for. A fetch whose next bytes would need a
// block beyond that is refused (Admit: the Hub pauses it, TCP slows the server) and woken when
// blocks are freed or the hashed prefix reaches its block (WakeStarved: also when the prefix
// grows by bytes read back from the file, which frees no block), so a link faster than the
// hashing does not push bytes out to be read back. Only where the window holds nothing that
// is about to be freed does the fetch the hasher waits for give up a written block further
// ahead (read back later), or write to the file directly: never a standstill. On a far link
// (write_ahead) no fetch is refused: where the window is full, any fetch's new block takes
// the place of the written, unhashed block furthest ahead of its prefix (given up: read back
// when the prefix reaches it), and only where no block is written yet do its bytes go to the
// file through the page cache. What is read back is read past the page cache, a block ahead
// of the hashing (ReadAhead: engine/read_ahead.h). So on a far link too each byte is copied
// once by the CPU, and the page cache is neither filled nor dropped (a 1 GiB pull on a
// throttled link wrote and read back ~830 MiB through it: 1.7-1.9 CPU-s, against 1.2-1.4
// now: tools/bench/ANALYSIS.md "Since a6a9028").
//
// A block is made only for a span none of whose bytes are `received` (resumed bytes, a span
// written directly): such spans are written as they come and read back to be hashed. Bytes
// in a block that is not whole yet are written out on the durability clock
// (FlushPartialBlocks; a slow link fills a block in seconds); the block is then finished with
// ordinary writes of the rest only: bytes that may be committed are never written again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/byte_range.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/status.h"
#include "engine/planner.h"
#include "engine/read_ahead.h"
#include "net/hub.h"
#include "storage/partial_file.h"

namespace modelsync::engine {

inline constexpr uint64_t kBlock = 1ull << 20;
inline constexpr size_t kWindowBlocks = 32;  // 32 MiB
inline constexpr size_t kFrontierBlocks = 8;  // of those, kept for the blocks the hasher waits for
inline constexpr int kWriters = 2;  // writing threads: two direct writes in flight keep the disk busier
inline constexpr size_t kWakeRoom = 16;  // free blocks before paused fetches are woken
inline constexpr uint64_t kMaxPiece = 1ull << 20;  // the most a sink is handed at once (curl: <= 512 KiB)

// One block of the memory window (all fields guarded by TransferShared::mu, except the bytes
// of `data`, which belong to whoever pinned it or to the writing thread once `queued`).
struct Block {
  uint64_t begin = 0, len = 0;  // file offsets: begin is a multiple of kBlock
  char* data = nullptr;         // kBlock bytes, kDirectAlign-aligned, from the pool
  RangeSet have;                // bytes copied in
  RangeSet flushed;             // of those, written to the file before it was whole
  int pins = 0;                 // sinks copying into it, the hasher hashing it
  bool queued = false;          // whole: handed to the writing threads (or about to be)
  bool flushing = false;        // FlushPartialBlocks is writing some of it
  bool written = false;         // on the file (its span is in the Xfer's `received`)
  bool hashed = false;
  bool whole() const { return have.Contains({begin, begin + len}); }
};

// One content being fetched (a FilePlan of kind kFetch or kResume).
struct Xfer {
  const FilePlan* fp = nullptr;
  uint64_t id = 0;      // transfer id (partial file name); changes on an integrity retry
  bool memory = false;  // small file: fetched into `buffer`, no partial file
  std::unique_ptr<storage::PartialFile> file;
  std::string buffer;
  // Every transfer but a small file's (`memory`) goes through memory blocks (the window
  // above), written directly where the partial file takes it, with ordinary writes elsewhere.
  std::map<uint64_t, std::unique_ptr<Block>> blocks;  // guarded, by begin

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
  std::condition_variable cv;        // the control thread's
  std::condition_variable hash_cv;   // the hashing thread's
  std::condition_variable write_cv;  // the writing threads'
  bool wake = false;
  Status failure;  // first failure (guarded by mu)
  std::atomic<uint64_t> received_bytes{0};

  class Sink final : public net::FetchSink {
   public:
    Sink(TransferShared* impl, Xfer* x, ByteRange range, const Clock* clock)
        : range_begin(range.begin),
          launched(clock->Now()),
          mark_next(range.begin),
          mark_time(launched),
          next(range.begin),
          end(range.end),
          impl_(impl),
          x_(x),
          clock_(clock) {}
    Status OnData(uint64_t offset, const char* data, size_t n) override {
      if (!x_->memory) return OnWindowData(offset, data, n);
      // A split (engine/transfer_parallel.h) may have moved `end` down: write up to it, then
      // end this fetch; the new fetch has the rest. (If the split raced with this piece, a
      // few bytes may be written by both: the same bytes at the same offsets.)
      const uint64_t stop = end.load();
      if (offset >= stop) return Status::Cancelled("split");
      const bool cut = offset + n > stop;
      if (cut) n = static_cast<size_t>(stop - offset);
      // Only a small file's fetch comes here (every partial file has a window).
      if (offset + n > x_->buffer.size())
        return Status::Permanent("server sent bytes past the end of " + x_->fp->path);
      std::memcpy(x_->buffer.data() + offset, data, n);
      impl_->received_bytes += n;
      std::lock_guard<std::mutex> lock(impl_->mu);
      SeeFirstByte();
      x_->received.Add({offset, offset + n});
      x_->unsynced += n;
      x_->written += n;
      next.store(offset + n);
      return cut ? Status::Cancelled("split") : Status::Ok();
    }
    bool Ready(uint64_t offset) override { return x_->memory || impl_->Admit(this, offset); }
    // Receiving in place (the range reader): the bytes from offset go straight into the
    // block that holds them, pinned until Placed. None for a small file's buffer, or where no
    // block may take them (OnData then, which writes them to the file).
    Status Space(uint64_t offset, size_t max, char** data, size_t* size) override {
      *data = nullptr;
      *size = 0;
      if (x_->memory) return Status::Ok();
      const uint64_t stop = end.load();
      if (offset >= stop) return Status::Cancelled("split");
      const uint64_t begin = offset / kBlock * kBlock;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(
          {static_cast<uint64_t>(max), stop - offset, begin + kBlock - offset}));
      if (offset + n > x_->fp->size)
        return Status::Permanent("server sent bytes past the end of " + x_->fp->path);
      if (!first_byte_noted_) {
        first_byte_noted_ = true;
        std::lock_guard<std::mutex> lock(impl_->mu);
        SeeFirstByte();
      }
      RangeSet to_file;
      lent_ = impl_->Pin(x_, offset, n, &to_file);
      if (lent_ == nullptr) return Status::Ok();
      *data = lent_->data + (offset - begin);
      *size = n;
      return Status::Ok();
    }
    Status Placed(uint64_t offset, size_t n) override {
      Block* b = lent_;
      lent_ = nullptr;
      if (b == nullptr) return n == 0 ? Status::Ok() : Status::Permanent("internal: bytes placed where no memory was lent");
      impl_->Unpin(x_, b, offset, n);
      impl_->received_bytes += n;
      next.store(offset + n);
      return Status::Ok();
    }
    // OnData for a transfer with a partial file: into its blocks (TransferShared::Stage).
    Status OnWindowData(uint64_t offset, const char* data, size_t n) {
      const uint64_t stop = end.load();
      if (offset >= stop) return Status::Cancelled("split");
      const bool cut = offset + n > stop;
      if (cut) n = static_cast<size_t>(stop - offset);
      if (offset + n > x_->fp->size)
        return Status::Permanent("server sent bytes past the end of " + x_->fp->path);
      if (!first_byte_noted_) {  // the lock once per fetch, not for every piece
        first_byte_noted_ = true;
        std::lock_guard<std::mutex> lock(impl_->mu);
        SeeFirstByte();
      }
      MS_RETURN_IF_ERROR(impl_->Stage(x_, offset, data, n));
      impl_->received_bytes += n;
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
    // When the first body byte was taken (guarded; for the range sizer: launch -> first
    // byte is the request's round trip, including any wait for room in the window).
    const uint64_t range_begin;
    const Clock::TimePoint launched;
    bool first_byte_seen = false;
    Clock::TimePoint first_byte;
    void SeeFirstByte() {
      if (first_byte_seen) return;
      first_byte_seen = true;
      first_byte = clock_->Now();
    }
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
    bool first_byte_noted_ = false;  // the Hub's loop thread's own: first_byte_seen is set
    Block* lent_ = nullptr;  // pinned by Space until Placed (the Hub's loop thread's own)
    const Clock* clock_;

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
  // Its reads from the files (what no block holds), a block ahead: the hashing thread only.
  ReadAhead read_ahead{kBlock};

  // The window's blocks (guarded): buffers to reuse, how many were made, the transfers that
  // hold blocks; the writing threads' queue, and how many blocks they are writing now.
  std::deque<char*> free_blocks;  // reused oldest first (NewBlock)
  size_t blocks_made = 0;
  // The blocks' memory: kWindowBlocks blocks in one region, 2 MiB aligned and advised to be
  // backed by huge pages (fewer page pins per O_DIRECT write, fewer TLB misses for the copy
  // and the hash), made by MakePool: by the runner before its first fetch, or by the first
  // block. Blocks are handed out in address order.
  char* pool = nullptr;
  // Makes `pool` (once) and touches the pages of its first `touch_blocks` blocks (the ones a
  // run will use first): with huge pages the kernel may have to compact memory to find them,
  // which is better paid before the fetches than in a page fault on the network loop's
  // thread; a pull with a few MiB to fetch touches a few MiB. Pages not touched here fault
  // when first used. Without memory, pool stays null (no block is made: the fetches write to
  // their files). Called before the threads that use blocks run, or under mu.
  void MakePool(size_t touch_blocks);
  std::set<Xfer*> windowed;
  std::vector<std::thread> writer_threads;
  std::deque<std::pair<Xfer*, Block*>> write_jobs;
  int writing = 0;  // blocks being written now
  bool awaiting_writes = false;  // WaitWrites is waiting: the writers wake it when drained
  bool stopping = false;  // the run failed: PostHash hands out no more jobs
  // Admit never refuses, and a new block may give up a written one (NewBlock): the bytes are
  // read back to be hashed (TransferRunnerOptions::write_ahead); bytes no block can take are
  // written to the file (Stage). Set before any fetch on a far link, or
  // by the control thread (under mu) once fetches waited on a link slow for the CPU
  // (engine/transfer_parallel.h WriteAheadDue): it is never cleared.
  std::atomic<bool> write_ahead{false};
  // For that decision: refusals so far (guarded), and the hashing thread's busy time (the
  // nanoseconds of `clock` it spent hashing and reading back) and the bytes it hashed.
  uint64_t refusals = 0;
  const Clock* clock = nullptr;  // the run's clock (set before the threads run)
  std::atomic<uint64_t> hash_busy_ns{0};
  std::atomic<uint64_t> hash_bytes{0};
  // Sinks refused (Admit) are woken through wake_sinks (the Hub's WakeSinks, set by the
  // runner before any fetch) when blocks are freed or the hashed prefix grows (WakeStarved).
  std::vector<std::pair<Xfer*, uint64_t>> refused;  // since the last wake: whose, where
  std::function<void()> wake_sinks;

  TransferShared() = default;
  TransferShared(const TransferShared&) = delete;
  TransferShared& operator=(const TransferShared&) = delete;
  ~TransferShared();

  // The hashing thread's body: hashes each job's prefix (from memory blocks, or read back
  // from the partial file) until stop_hashing.
  void HashLoop();
  // The writing thread's body: writes each whole block to its partial file (direct), then
  // marks its span received; until stop_hashing.
  void WriteLoop();
  // The Hub's loop thread: n bytes at offset of x (a window transfer) into its blocks, or
  // into the file where no block can hold them.
  Status Stage(Xfer* x, uint64_t offset, const char* data, size_t n);
  // The Hub's loop thread, mu NOT held: the block of x for the n bytes at offset (all within
  // one block), made if need be and pinned, for the caller to fill. Null where no block may
  // take them: *to_file then holds the parts not on the file yet (the rest is there, or in a
  // block made whole meanwhile: dropped).
  Block* Pin(Xfer* x, uint64_t offset, size_t n, RangeSet* to_file);
  // mu NOT held: the pinned block b got the n bytes at offset (0: none came); unpins it, and
  // hands it to the writing and hashing threads once whole.
  void Unpin(Xfer* x, Block* b, uint64_t offset, size_t n);
  // The Hub's loop thread, before each piece of a window transfer: whether sink s may
  // deliver the bytes at offset now. When the window is full only the fetch filling the block
  // a transfer's hashed prefix waits for goes on; the others pause until a block is freed, so
  // a link faster than the hashing does not push blocks out to be read back. With
  // write_ahead (a far link) it never refuses.
  bool Admit(const Sink* s, uint64_t offset);
  // Hands the hashing thread a job for x when it has none and more of x is hashable (mu
  // held). The control thread, the loop thread (a block whole) and the writers call it.
  bool PostHash(Xfer* x);
  // Where x's hashable prefix ends: from x->hashed over what is received or in whole blocks.
  // Called with mu held.
  uint64_t HashableEnd(Xfer* x);
  // The most bytes any running fetch into a file has left (mu held): what Staggered sizes a
  // new range behind when writing ahead.
  uint64_t LongestLeft() const;
  // Waits (mu held through `lock`) until the writing thread has nothing queued or in hand.
  void WaitWrites(std::unique_lock<std::mutex>& lock);
  size_t held() const { return blocks_made - free_blocks.size(); }
  // After a failure, once nothing is in flight and the writer is idle: writes what the
  // blocks of x hold to the file (ordinary writes: they are not whole) so the final sync
  // keeps it, and frees them. Control thread, mu NOT held.
  Status SpillBlocks(Xfer* x);
  // Control thread, mu NOT held: writes the bytes of x's blocks that are not whole yet (and
  // not written before) to the file with ordinary writes, as received, so the next sync
  // makes them durable. The block stays; once whole, only the rest of it is written.
  Status FlushPartialBlocks(Xfer* x);
  // Frees every block of x (mu held).
  void DropBlocks(Xfer* x);

 private:
  // mu held: a block for [begin, ...) of x, or null when the window is full of blocks that
  // cannot be given up.
  // Only a `frontier` block (the one the hashed prefix waits for) may take the last
  // kFrontierBlocks or give up another block.
  Block* NewBlock(Xfer* x, uint64_t begin, bool frontier);

  // mu held: frees b once written and hashed (or `force`) and nobody holds it.
  void MaybeFree(Xfer* x, Block* b, bool force = false);
  bool GiveUpOne();
  void WakeStarved();  // mu held

};


}  // namespace modelsync::engine
