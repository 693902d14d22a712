#include "engine/transfer_state.h"

#include <algorithm>
#include <cstdlib>

#include "base/copy.h"
#include "base/platform.h"
#include "engine/transfer_cadence.h"

namespace modelsync::engine {

TransferShared::~TransferShared() {
  {
    std::lock_guard<std::mutex> lock(mu);
    stop_hashing = true;
  }
  cv.notify_all();
  hash_cv.notify_all();
  write_cv.notify_all();
  if (hasher_thread.joinable()) hasher_thread.join();
  for (auto& t : writer_threads) t.join();
  std::free(pool);  // every block's memory
}

void TransferShared::HashLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    hash_cv.wait(lock, [&] { return stop_hashing || !hash_jobs.empty(); });
    if (stop_hashing) return;
    auto [x, upto] = hash_jobs.front();
    hash_jobs.pop_front();
    uint64_t pos = x->hashed.load();
    Status s;
    // A job goes on while the transfer's hashable prefix grows (blocks become whole on the
    // loop thread), without a round through the control thread. (Only transfers with a
    // partial file get jobs: small files are hashed by the control thread.)
    while (s.ok() && (pos < upto || (upto = HashableEnd(x)) > pos)) {
      // A whole block in memory is hashed from there; anything else was written to the file
      // (HashableEnd counts nothing else) and is read back, a block at a time so that the
      // next block in memory is not read from the file; the next span to read back, if the
      // next block is not in memory, is read while this one is hashed.
      Block* b = nullptr;
      size_t n = 0;
      uint64_t next = 0;
      size_t next_n = 0;
      if (auto it = x->blocks.find(pos); it != x->blocks.end() && it->second->whole()) {
        b = it->second.get();
        ++b->pins;
      } else {
        n = static_cast<size_t>(std::min(kBlock - pos % kBlock, upto - pos));
        next = pos + n;
        // On the file: no block at next (a block is made only for bytes none of which are
        // received, and bytes below upto are received or in whole blocks).
        if (next < upto && x->blocks.count(next / kBlock * kBlock) == 0)
          next_n = static_cast<size_t>(std::min(kBlock - next % kBlock, upto - next));
      }
      lock.unlock();
      const Clock::TimePoint busy_from = clock ? clock->Now() : Clock::TimePoint{};
      if (b) {
        x->hasher->Update(b->data, b->len);
        pos += b->len;
      } else {
        Result<const char*> got = read_ahead.Read(x->file.get(), pos, n);
        s = got.status();
        if (s.ok()) {
          if (next_n > 0) read_ahead.Begin(x->file.get(), next, next_n);
          x->hasher->Update(*got, n);
          pos += n;
        }
      }
      if (clock)
        hash_busy_ns += static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(clock->Now() - busy_from).count());
      hash_bytes += pos - x->hashed.load();
      x->hashed.store(pos);
      lock.lock();
      if (b) {
        --b->pins;
      } else if (pos % kBlock == 0 || pos == x->fp->size) {
        // Read back to the end of a block that is still held (it was flushed in part before
        // it was whole): done with it all the same.
        auto it = x->blocks.find((pos - 1) / kBlock * kBlock);
        if (it != x->blocks.end()) b = it->second.get();
      }
      if (b) {
        b->hashed = true;
        MaybeFree(x, b);
      }
      // The prefix grew: a fetch refused while its block was not yet the one the hashed
      // prefix waits for may be that fetch now. Read back from the file (written there when
      // no block was free), the prefix frees no block, and without this look nothing would
      // wake it (every other fetch paused by the window: a standstill).
      WakeStarved();
    }
    // Nothing is read from x's file once its job is over. (A span begun is always the next
    // one read, so none is in flight here: this never waits. mu stays held: a block made
    // whole between the look at HashableEnd above and hash_busy's clearing would find the
    // job still busy and post none, and wait for the next block or the control thread.)
    read_ahead.Settle();
    x->hash_error = s;
    x->hash_busy.store(false);
    wake = true;
    cv.notify_all();
  }
}

void TransferShared::WriteLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    write_cv.wait(lock, [&] { return stop_hashing || !write_jobs.empty(); });
    if (stop_hashing) return;
    auto [x, b] = write_jobs.front();
    write_jobs.pop_front();
    ++writing;
    lock.unlock();
    // The block is whole and queued: no sink copies into it any more (Stage), the hasher
    // only reads it, and nobody frees it before `written`.
    // A block partly flushed before it was whole (FlushPartialBlocks; `flushed` no longer
    // changes once it is queued) gets only the rest, with ordinary writes: bytes that may
    // be committed are never written again.
    Status s;
    if (b->flushed.empty()) {
      s = x->file->WriteDirect(b->begin, std::string_view(b->data, b->len));
    } else {
      const RangeSet rest = b->flushed.Uncovered({b->begin, b->begin + b->len});
      for (const ByteRange& r : rest.ranges()) {
        s = x->file->Write(r.begin, std::string_view(b->data + (r.begin - b->begin), r.size()));
        if (!s.ok()) break;
      }
    }
    lock.lock();
    --writing;
    if (s.ok()) {
      x->received.Add({b->begin, b->begin + b->len});
      x->unsynced += b->len;
      x->written += b->len;
      b->written = true;
      MaybeFree(x, b);
      PostHash(x);
    } else if (failure.ok()) {
      failure = s.With(x->fp->path);
    }
    // The control thread is woken for what it acts on (a failure, a sync due by size, a
    // transfer all written, the queue drained while WaitWrites waits), not for every block
    // (nor every time the writers catch up with the network): it looks at the rest on its
    // clock.
    if (!s.ok() || x->unsynced >= kSyncBytes || x->received.Contains({0, x->fp->size}) ||
        (awaiting_writes && write_jobs.empty() && writing == 0)) {
      wake = true;
      cv.notify_all();
    }
  }
}

bool TransferShared::PostHash(Xfer* x) {
  if (stopping || x->hash_busy.load() || !x->hash_error.ok() || !x->file) return false;
  const uint64_t upto = HashableEnd(x);
  if (upto <= x->hashed.load()) return false;
  x->hash_busy.store(true);
  hash_jobs.push_back({x, upto});
  hash_cv.notify_one();
  return true;
}

Block* TransferShared::Pin(Xfer* x, uint64_t offset, size_t n, RangeSet* to_file) {
  const uint64_t begin = offset / kBlock * kBlock;
  const uint64_t size = x->fp->size;
  std::lock_guard<std::mutex> lock(mu);
  Block* b = nullptr;
  auto it = x->blocks.find(begin);
  if (it != x->blocks.end()) {
    // A whole block already holds these bytes (a split raced with this piece): they are
    // dropped, so what is hashed is what is written.
    if (!it->second->queued) b = it->second.get();
  } else if (!x->received.Overlaps({begin, std::min(size, begin + kBlock)})) {
    b = NewBlock(x, begin, /*frontier=*/begin <= HashableEnd(x));
  }
  if (b) {
    ++b->pins;
  } else if (it == x->blocks.end()) {
    // Bytes already on the file are never written again (they may have been hashed).
    *to_file = x->received.Uncovered({offset, offset + n});
  }
  return b;
}

void TransferShared::Unpin(Xfer* x, Block* b, uint64_t offset, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  if (n > 0) b->have.Add({offset, offset + n});
  --b->pins;
  if (n > 0 && b->whole()) {
    b->queued = true;
    if (!b->flushing) {  // else FlushPartialBlocks hands it over when it is done
      write_jobs.push_back({x, b});
      write_cv.notify_one();
    }
    PostHash(x);
  }
}

Status TransferShared::Stage(Xfer* x, uint64_t offset, const char* data, size_t n) {
  while (n > 0) {
    const uint64_t begin = offset / kBlock * kBlock;
    const size_t seg = static_cast<size_t>(std::min<uint64_t>(n, begin + kBlock - offset));
    RangeSet to_file;  // the parts of the piece not on the file yet
    if (Block* b = Pin(x, offset, seg, &to_file)) {
      CopyStreaming(b->data + (offset - begin), data, seg);  // hashed and written by others
      Unpin(x, b, offset, seg);
    } else {
      for (const ByteRange& r : to_file.ranges()) {
        MS_RETURN_IF_ERROR(
            x->file->Write(r.begin, std::string_view(data + (r.begin - offset), r.size())));
        std::lock_guard<std::mutex> lock(mu);
        x->received.Add(r);
        x->unsynced += r.size();
        x->written += r.size();
        PostHash(x);
      }
    }
    offset += seg;
    data += seg;
    n -= seg;
  }
  return Status::Ok();
}

bool TransferShared::Admit(const Sink* s, uint64_t offset) {
  Xfer* x = s->xfer();
  std::lock_guard<std::mutex> lock(mu);
  // The new blocks a piece from offset may need (a piece is at most kMaxPiece).
  size_t need = 0;
  const uint64_t last = std::min(x->fp->size, offset + kMaxPiece);
  for (uint64_t begin = offset / kBlock * kBlock; begin < last; begin += kBlock)
    if (x->blocks.count(begin) == 0 &&
        !x->received.Overlaps({begin, std::min(x->fp->size, begin + kBlock)}))
      ++need;
  if (need == 0 || held() + need <= kWindowBlocks - kFrontierBlocks) return true;
  // Writing ahead (a far link, or a near one that caps each connection): the bytes go on, to
  // the file where no block is free (Stage).
  if (write_ahead) return true;
  // The block the hashed prefix waits for goes on, into the reserve; when that is full too,
  // it waits for blocks the hasher is about to release, and only where there are none gives
  // up a block further ahead (NewBlock): read back later, but never a standstill.
  if (offset / kBlock * kBlock <= HashableEnd(x)) {
    if (held() + need <= kWindowBlocks) return true;
    bool releasing = false;
    for (Xfer* w : windowed) {
      const uint64_t end = HashableEnd(w);
      for (auto& [begin, b] : w->blocks) releasing |= begin < end || b->hashed;
    }
    if (!releasing) return true;
  }
  // A fetch asked again while still refused is listed once (the wake-ups of the rate
  // limiter ask every paused fetch each time).
  if (std::find(refused.begin(), refused.end(), std::make_pair(x, offset)) == refused.end())
    refused.push_back({x, offset});
  ++refusals;
  return false;
}

uint64_t TransferShared::LongestLeft() const {
  uint64_t longest = 0;
  for (const auto& sk : sinks) {
    if (sk->finished || sk->xfer()->memory) continue;
    const uint64_t next = sk->next.load(), end = sk->end.load();
    if (end > next) longest = std::max(longest, end - next);
  }
  return longest;
}

uint64_t TransferShared::HashableEnd(Xfer* x) {
  uint64_t pos = x->hashed.load();
  for (;;) {
    const uint64_t e = x->received.RunEnd(pos);
    if (e > pos) {
      pos = e;
      continue;
    }
    auto it = x->blocks.find(pos);
    if (it == x->blocks.end() || !it->second->whole()) break;
    pos += it->second->len;
  }
  return std::min(pos, x->fp->size);
}

void TransferShared::WaitWrites(std::unique_lock<std::mutex>& lock) {
  awaiting_writes = true;
  cv.wait(lock, [&] { return write_jobs.empty() && writing == 0; });
  awaiting_writes = false;
}

Status TransferShared::SpillBlocks(Xfer* x) {
  std::vector<std::pair<ByteRange, const char*>> parts;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [begin, b] : x->blocks)
      if (!b->written) {
        const RangeSet rest = b->have.Minus(b->flushed);
        for (const ByteRange& r : rest.ranges()) parts.push_back({r, b->data + (r.begin - b->begin)});
      }
  }
  Status s;
  for (auto& [r, p] : parts) {
    s = x->file->Write(r.begin, std::string_view(p, r.size()));
    if (!s.ok()) break;
    std::lock_guard<std::mutex> lock(mu);
    x->received.Add(r);
    x->unsynced += r.size();
    x->written += r.size();
  }
  std::lock_guard<std::mutex> lock(mu);
  DropBlocks(x);
  return s;
}

Status TransferShared::FlushPartialBlocks(Xfer* x) {
  std::vector<std::pair<Block*, RangeSet>> parts;  // per block: what it holds, not flushed yet
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [begin, b] : x->blocks) {
      if (b->queued) continue;
      RangeSet fresh = b->have.Minus(b->flushed);
      if (fresh.empty()) continue;
      // Nobody frees it, and if it becomes whole meanwhile the writers wait for this flush to
      // end (they write only what was not flushed: committed bytes are never written again).
      ++b->pins;
      b->flushing = true;
      parts.push_back({b.get(), std::move(fresh)});
    }
  }
  Status s;
  for (auto& [b, fresh] : parts) {
    for (const ByteRange& r : fresh.ranges()) {
      if (s.ok())
        s = x->file->Write(r.begin, std::string_view(b->data + (r.begin - b->begin), r.size()));
      if (!s.ok()) break;
      std::lock_guard<std::mutex> lock(mu);
      b->flushed.Add(r);
      x->received.Add(r);
      x->unsynced += r.size();
      x->written += r.size();
    }
    std::lock_guard<std::mutex> lock(mu);
    --b->pins;
    b->flushing = false;
    if (b->queued) {
      write_jobs.push_back({x, b});
      write_cv.notify_one();
    }
  }
  return s;
}

void TransferShared::MakePool(size_t touch_blocks) {
  if (pool) return;
  static_assert(kWindowBlocks * kBlock % platform::kHugePage == 0);
  constexpr size_t kBytes = kWindowBlocks * kBlock;
  pool = static_cast<char*>(std::aligned_alloc(platform::kHugePage, kBytes));
  if (!pool) return;
  platform::AdviseHugePages(pool, kBytes);
  const size_t touch = std::min(touch_blocks, kWindowBlocks) * kBlock;
  for (size_t i = 0; i < touch; i += 4096) pool[i] = 0;  // every page, whatever its size
}

void TransferShared::DropBlocks(Xfer* x) {
  for (auto& [begin, b] : x->blocks) free_blocks.push_back(b->data);
  x->blocks.clear();
  windowed.erase(x);
  WakeStarved();
}

Block* TransferShared::NewBlock(Xfer* x, uint64_t begin, bool frontier) {
  // Writing ahead, a block ahead takes the place of a written one (GiveUpOne): its bytes are
  // read back past the page cache later, which costs less than writing these through it.
  if (!frontier && held() >= kWindowBlocks - kFrontierBlocks && !(write_ahead && GiveUpOne()))
    return nullptr;
  char* data = nullptr;
  if (free_blocks.empty() && blocks_made < kWindowBlocks) {
    MakePool(0);  // (the runner made it already where it had fetches to make)
    if (pool) data = pool + blocks_made++ * kBlock;
  }
  if (!data && free_blocks.empty() && !GiveUpOne()) return nullptr;
  if (!data) {
    // The block freed longest ago: the network receives into it in place (net/range_reader.h),
    // and one freed just now is still in the hashing thread's core's cache, whose lines every
    // store would first take from that core (LIFO against FIFO, 10 alternating rounds: 1.285
    // against 1.230 CPU-s per cold GiB).
    data = free_blocks.front();
    free_blocks.pop_front();
  }
  auto b = std::make_unique<Block>();
  b->begin = begin;
  b->len = std::min(kBlock, x->fp->size - begin);
  b->data = data;
  Block* raw = b.get();
  x->blocks.emplace(begin, std::move(b));
  windowed.insert(x);
  return raw;
}

void TransferShared::MaybeFree(Xfer* x, Block* b, bool force) {
  if (b->pins > 0 || !(force || (b->written && b->hashed))) return;
  free_blocks.push_back(b->data);
  x->blocks.erase(b->begin);
  if (x->blocks.empty()) windowed.erase(x);
  WakeStarved();
}

void TransferShared::WakeStarved() {
  // The paused fetches are woken when there is room for several blocks (the Hub asks each
  // one's Ready() again and leaves paused those that would be refused), or at once when one
  // of them fills the block a hashed prefix waits for.
  if (refused.empty()) return;
  bool due = held() + kWakeRoom <= kWindowBlocks - kFrontierBlocks;
  for (auto& [x, offset] : refused) due |= offset / kBlock * kBlock <= HashableEnd(x);
  if (!due) return;
  refused.clear();
  if (wake_sinks) wake_sinks();
}

bool TransferShared::GiveUpOne() {
  // The written, unhashed block furthest ahead of its transfer's hashed prefix: the hasher
  // needs it last, and reads it back from the file then.
  Xfer* best_x = nullptr;
  Block* best = nullptr;
  uint64_t ahead = 0;
  for (Xfer* x : windowed)
    for (auto& [begin, b] : x->blocks) {
      if (!b->written || b->hashed || b->pins > 0) continue;
      const uint64_t d = begin - std::min(begin, x->hashed.load());
      if (!best || d > ahead) best_x = x, best = b.get(), ahead = d;
    }
  if (!best) return false;
  MaybeFree(best_x, best, /*force=*/true);
  return true;
}

}  // namespace modelsync::engine
