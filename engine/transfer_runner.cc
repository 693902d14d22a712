#include "engine/transfer_runner.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/hash.h"
#include "engine/event_builders.h"
#include "engine/small_files.h"
#include "engine/transfer_cadence.h"
#include "engine/transfer_parallel.h"
#include "engine/transfer_state.h"
#include "net/hub.h"
#include "storage/blob_store.h"
#include "storage/partial_file.h"

namespace modelsync::engine {
namespace {


v1::Event RangesEvent(uint64_t id, const RangeSet& ranges) {
  v1::Event e;
  auto* rc = e.mutable_ranges_committed();
  rc->set_transfer_id(id);
  for (const auto& r : ranges.ranges()) {
    auto* br = rc->add_ranges();
    br->set_begin(r.begin);
    br->set_end(r.end);
  }
  return e;
}

}  // namespace

TransferRunner::TransferRunner(Journal& journal, net::Hub& hub, storage::PartialStore& partials,
                               storage::BlobStore& blobs, TransferRunnerOptions options)
    : journal_(journal),
      hub_(hub),
      partials_(partials),
      blobs_(blobs),
      options_(std::move(options)) {}

TransferRunner::~TransferRunner() = default;

namespace {

std::deque<ByteRange> Chunks(const std::vector<ByteRange>& ranges) {
  return std::deque<ByteRange>(ranges.begin(), ranges.end());
}

std::vector<ByteRange> SplitWhole(uint64_t size, const std::vector<ByteRange>& like) {
  uint64_t chunk = 0;
  for (const auto& r : like) chunk = std::max(chunk, r.size());
  if (chunk == 0) chunk = size;
  std::vector<ByteRange> out;
  for (uint64_t b = 0; b < size; b += chunk) out.push_back({b, std::min(size, b + chunk)});
  return out;
}

}  // namespace

Status TransferRunner::Run(const Plan& plan) {
  const Clock* clock = options_.clock ? options_.clock : SystemClock::Default();
  TransferShared impl;
  std::vector<v1::Event> batch;
  // Ids for restarted transfers: past every id this plan or the log has used.
  uint64_t next_id = std::max(plan.next_transfer_id, journal_.state().next_transfer_id);
  TransferProgress progress;
  progress.bytes_total = plan.total_bytes;
  uint64_t present_at_start = plan.present_bytes;
  std::set<std::string> contents;
  for (const auto& fp : plan.files) {
    if (!contents.insert(fp.content_id).second) continue;
    ++progress.files_total;
    if (fp.action == FileAction::kIntact || fp.action == FileAction::kLink) {
      if (fp.action == FileAction::kLink && !fp.fetched_by.empty()) continue;
      ++progress.files_done;
    }
  }

  for (const auto& fp : plan.files) {
    if (fp.action != FileAction::kFetch && fp.action != FileAction::kResume) continue;
    auto x = std::make_unique<Xfer>();
    x->last_sync = clock->Now();
    x->fp = &fp;
    x->id = fp.transfer_id;
    x->memory = fp.action == FileAction::kFetch && fp.in_memory;  // the planner's decision
    x->todo = Chunks(fp.fetch);
    x->hasher =
        std::make_unique<Hasher>(fp.lfs ? HashKind::kSha256 : HashKind::kGitBlobSha1, fp.size);
    if (x->memory) {
      // The buffer is allocated when the transfer is launched and freed when it is verified,
      // so memory holds at most `connections` small files at once, not all of them.
      if (x->todo.empty()) x->buffer.resize(fp.size);
      x->started = true;
    } else if (fp.action == FileAction::kResume) {
      MS_ASSIGN_OR_RETURN(x->file, partials_.OpenExisting(fp.transfer_id, fp.size));
      const auto& ts = journal_.state().transfers.at(fp.transfer_id);
      x->committed = ts.committed;
      x->received = ts.committed;
      x->started = true;
    }
    impl.xfers.push_back(std::move(x));
  }
  // Bytes of the plan not launched yet (every transfer's todo), for ShareOf.
  uint64_t todo_bytes = 0;
  for (auto& x : impl.xfers)
    for (const ByteRange& t : x->todo) todo_bytes += t.size();
  // The window's memory is made here, before any fetch, where a page fault that must first
  // find a huge page costs the pull a moment and not the network loop: as many blocks as the
  // fetches into files may fill (each range may start and end inside a block).
  size_t window_blocks = 0;
  for (auto& x : impl.xfers)
    if (!x->memory)
      for (const ByteRange& t : x->todo) window_blocks += t.size() / kBlock + 2;
  if (window_blocks > 0) impl.MakePool(window_blocks);
  impl.write_ahead = options_.write_ahead;
  impl.clock = clock;
  impl.hasher_thread = std::thread([&impl] { impl.HashLoop(); });
  for (int i = 0; i < kWriters; ++i) impl.writer_threads.emplace_back([&impl] { impl.WriteLoop(); });
  impl.wake_sinks = [this] { hub_.WakeSinks(); };

  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    auto r = journal_.Append(std::move(batch));
    batch.clear();
    return r.status();
  };
  MS_RETURN_IF_ERROR(flush());

  auto start_partial = [&](Xfer& x) -> Status {
    MS_ASSIGN_OR_RETURN(x.file, partials_.Create(x.id, x.fp->size));
    v1::Event e;
    auto* ts = e.mutable_transfer_started();
    ts->set_transfer_id(x.id);
    ts->set_repo(plan.repo);
    ts->set_commit(plan.commit);
    ts->set_path(x.fp->path);
    ts->set_content_id(x.fp->content_id);
    ts->set_size(x.fp->size);
    ts->set_lfs(x.fp->lfs);
    batch.push_back(std::move(e));
    MS_RETURN_IF_ERROR(flush());  // TransferStarted is durable before any RangesCommitted
    x.started = true;
    return Status::Ok();
  };

  // Syncs x's written bytes and queues their RangesCommitted. Called with mu NOT held.
  auto sync = [&](Xfer& x) -> Status {
    RangeSet durable;
    Status s = x.file->Sync(&durable);
    std::lock_guard<std::mutex> lock(impl.mu);
    x.last_sync = clock->Now();
    if (!s.ok()) return s;
    // Bytes that landed while fdatasync ran are still dirty: count them, or they would
    // wait for a next write that may never come.
    x.unsynced = x.file->Dirty().CoveredBytes();
    if (!durable.empty()) {
      x.committed.Add(durable);
      batch.push_back(RangesEvent(x.id, durable));
    }
    return Status::Ok();
  };

  // Verified small files are written and adopted by `small` (engine/small_files.h), off this
  // thread; they wait in small_batch for one batched sync + adoption (an fsync per file would
  // cost more than fetching it; the next batch waits for the one being adopted: SmallBatchDue),
  // and are recorded once `small` hands them back as blobs.
  std::unique_ptr<SmallFileWriter> small;
  if (std::any_of(impl.xfers.begin(), impl.xfers.end(), [](auto& x) { return x->memory; }))
    small = std::make_unique<SmallFileWriter>(
        blobs_,
        [&impl] {
          {
            std::lock_guard<std::mutex> lock(impl.mu);
            impl.wake = true;
          }
          impl.cv.notify_all();
        },
        [this](Xfer* x) {
          if (options_.on_small_blob) options_.on_small_blob(x->fp->path, x->fp->content_id);
        },
        options_.small_files_tree);
  std::vector<Xfer*> small_batch;
  Clock::TimePoint small_since;
  auto adopt_small = [&] {
    if (small_batch.empty()) return;
    std::vector<std::string> ids;
    for (Xfer* x : small_batch) ids.push_back(x->fp->content_id);
    small->Adopt(std::move(small_batch), std::move(ids));
    small_batch.clear();
  };
  auto record_small = [&]() -> Status {
    if (!small) return Status::Ok();
    std::vector<Xfer*> adopted;
    Status s = small->TakeAdopted(&adopted);
    for (Xfer* x : adopted) {
      batch.push_back(BlobVerifiedEvent(x->fp->content_id, x->fp->size));
      ++progress.files_done;
      if (options_.on_file_done) options_.on_file_done(x->fp->path, x->fp->size, true);
    }
    return s;
  };

  // Verifies a fully received, fully hashed transfer; adopts it or schedules a retry.
  auto finish = [&](Xfer& x) -> Status {
    std::string digest = x.hasher->FinishHex();
    if (digest == x.fp->content_id) {
      if (x.memory) {
        // Freed now, while this thread waits on the network, not all at once at the end.
        x.hasher.reset();
        // Written by `small` now, made durable and adopted with the next batch (adopt_small).
        small->Write(x.fp->content_id, x.fp->path, std::move(x.buffer));
        std::string().swap(x.buffer);
        if (small_batch.empty()) small_since = clock->Now();
        small_batch.push_back(&x);
        x.done = true;
        return Status::Ok();
      } else {
        x.file.reset();
        MS_RETURN_IF_ERROR(
            blobs_.Adopt(partials_.dir(), storage::PartialStore::NameOf(x.id), x.fp->content_id));
      }
      batch.push_back(BlobVerifiedEvent(x.fp->content_id, x.fp->size, x.memory ? 0 : x.id));
      x.done = true;
      ++progress.files_done;
      if (options_.on_file_done) options_.on_file_done(x.fp->path, x.fp->size, true);
      return Status::Ok();
    }
    std::string what =
        x.fp->path + ": content hashed to " + digest + ", expected " + x.fp->content_id;
    if (!x.memory) {
      v1::Event e;
      auto* tf = e.mutable_transfer_failed();
      tf->set_transfer_id(x.id);
      tf->set_reason("integrity: " + what);
      tf->set_code(static_cast<int>(StatusCode::kIntegrity));
      tf->set_discarded(true);
      batch.push_back(std::move(e));
      MS_RETURN_IF_ERROR(flush());
      x.file.reset();
      MS_RETURN_IF_ERROR(partials_.Remove(x.id));
    }
    if (++x.integrity_failures >= 2)
      return Status::Integrity(what + " (twice; the hub or a proxy is serving damaged data)");
    // Once more from the network, from scratch.
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.DropBlocks(&x);
    x.received.Clear();
    x.committed.Clear();
    x.todo = Chunks(SplitWhole(x.fp->size, x.fp->fetch));
    todo_bytes += x.fp->size;
    x.hashed = 0;
    x.hasher = std::make_unique<Hasher>(x.fp->lfs ? HashKind::kSha256 : HashKind::kGitBlobSha1,
                                        x.fp->size);
    if (!x.memory) {
      x.started = false;
      next_id = std::max(next_id, journal_.state().next_transfer_id);
      x.id = next_id++;
    }
    return Status::Ok();
  };

  // Each pass looks only at the transfers in motion (`active`: launched, or with nothing left
  // to fetch), never at the thousands still waiting their turn (`waiting`, plan order), so a
  // pull's CPU per file stays flat as the file count grows (issue 21 item 9).
  std::vector<Xfer*> active;
  std::deque<Xfer*> waiting;
  for (auto& x : impl.xfers) {
    if (x->todo.empty()) active.push_back(x.get());
    else waiting.push_back(x.get());
  }
  Status result;
  auto last_progress = clock->Now() - std::chrono::seconds(1);
  ConnectionGovernor governor(options_.connections, options_.start_connections);
  if (!impl.xfers.empty()) start_connections_ = governor.target();
  RangeSizer sizer;
  WriteAheadWatch write_ahead_watch(clock->Now());
  bool idle = false;  // a connection free and nothing to launch, since idle_since
  Clock::TimePoint idle_since = clock->Now();
  for (;;) {
    // Launch fetches in plan order, up to the connection budget; then, if connections are
    // still free, split the running fetches with the most left (transfer_parallel.h).
    std::vector<std::pair<Xfer*, ByteRange>> launch;
    {
      std::lock_guard<std::mutex> lock(impl.mu);
      if (!impl.failure.ok()) result = impl.failure;
      // Near, the window's waits are watched: writing ahead may pay after all (WriteAheadDue).
      if (!impl.write_ahead.load() &&
          write_ahead_watch.Observe(clock->Now(), impl.received_bytes.load(), impl.refusals,
                                    !impl.refused.empty(), impl.hash_bytes.load(),
                                    impl.hash_busy_ns.load())) {
        impl.write_ahead.store(true);
        impl.refused.clear();
        if (impl.wake_sinks) impl.wake_sinks();
        governor.Reopen();  // its last judgement was made with fetches waiting
      }
      // The next range of x, in file order, of the size the link calls for (RangeSizer).
      // Writing ahead, sizes are staggered behind the running fetch with the most left
      // (Staggered; each fetch launched in this pass counts as running).
      const bool write_ahead = impl.write_ahead.load();
      uint64_t longest_left = write_ahead ? impl.LongestLeft() : 0;
      auto take = [&](Xfer* x) {
        ByteRange r = x->todo.front();
        // Near the end of the pull, what is left is shared out among the connections, so the
        // last ranges end together rather than one connection running on alone.
        if (!x->memory) {
          uint64_t want = ShareOf(sizer.bytes(), todo_bytes, governor.target());
          if (write_ahead) want = Staggered(want, longest_left, governor.target());
          r = NextRange(r, want);
          longest_left = std::max(longest_left, r.size());
        }
        if (r.end == x->todo.front().end) x->todo.pop_front();
        else x->todo.front().begin = r.end;
        todo_bytes -= r.size();
        return r;
      };
      // A small file's fetch is one short request: what limits a run of them is the time each
      // takes to come back, not the bandwidth the governor measures, so they may use every
      // connection up to the cap.
      auto budget = [&](const Xfer* x) {
        const int limit = x && x->memory ? governor.cap() : governor.target();
        return impl.in_flight_total + static_cast<int>(launch.size()) < limit;
      };
      for (Xfer* x : active) {
        if (!result.ok()) break;
        while (!x->done && !x->todo.empty() && budget(x)) launch.push_back({x, take(x)});
      }
      while (result.ok() && !waiting.empty() && budget(waiting.front())) {
        Xfer* x = waiting.front();
        waiting.pop_front();
        active.push_back(x);
        if (x->memory && x->buffer.size() != x->fp->size) x->buffer.resize(x->fp->size);
        while (!x->done && !x->todo.empty() && budget(x)) launch.push_back({x, take(x)});
      }
      bool todo_left = !waiting.empty();
      for (Xfer* x : active) todo_left |= !x->done && !x->todo.empty();
      // A connection free with nothing to launch: each running fetch's rate is measured from
      // that moment (it may speed up now that it shares less), and only after kRateKnownAfter
      // is the one that would still run longest split.
      const auto now = clock->Now();
      if (!(result.ok() && budget(nullptr) && !todo_left)) {
        idle = false;
      } else if (!idle) {
        idle = true;
        idle_since = now;
        for (auto& sk : impl.sinks) sk->Mark(now);
      }
      while (idle && now - idle_since >= kRateKnownAfter && result.ok() && budget(nullptr)) {
        std::vector<TransferShared::Sink*> running;
        std::vector<RunningFetch> seen;
        for (auto& sk : impl.sinks) {
          if (sk->finished || sk->xfer()->memory) continue;
          running.push_back(sk.get());
          seen.push_back({sk->next.load(), sk->end.load(), sk->mark_next, now - sk->mark_time});
        }
        const int pick = ChooseSplit(seen);
        if (pick < 0) break;
        TransferShared::Sink* cut = running[static_cast<size_t>(pick)];
        const uint64_t end = seen[static_cast<size_t>(pick)].end;
        const uint64_t point = SplitPointOf(seen[static_cast<size_t>(pick)]);
        cut->end.store(point);
        launch.push_back({cut->xfer(), {point, end}});
      }
      // Measured with this pass's launches counted: a fetch that just ended and was
      // replaced does not make the window look idle.
      governor.Observe(clock->Now(), impl.received_bytes.load(),
                       impl.in_flight_total + static_cast<int>(launch.size()) >= governor.target());
    }
    if (!result.ok()) break;
    for (auto& [x, range] : launch) {
      if (!x->started) {
        result = start_partial(*x);
        if (!result.ok()) break;
      }
      auto sink = std::make_unique<TransferShared::Sink>(&impl, x, range, clock);
      net::FetchSpec spec;
      spec.repo = plan.repo;
      spec.commit = plan.commit;
      spec.path = x->fp->path;
      spec.file_size = x->fp->size;
      if (x->fp->lfs) spec.lfs_sha256 = x->fp->content_id;
      spec.git_oid = x->fp->lfs ? std::string() : x->fp->content_id;
      spec.range = range;
      {
        std::lock_guard<std::mutex> lock(impl.mu);
        ++x->in_flight;
        ++impl.in_flight_total;
      }
      uint64_t fid = hub_.Fetch(std::move(spec), sink.get());
      std::lock_guard<std::mutex> lock(impl.mu);
      x->fetch_ids.push_back(fid);
      impl.sinks.push_back(std::move(sink));
    }
    if (!result.ok()) break;

    // Reap finished sinks.
    {
      std::lock_guard<std::mutex> lock(impl.mu);
      for (auto it = impl.sinks.begin(); it != impl.sinks.end();) {
        if ((*it)->finished) {
          const TransferShared::Sink& sk = **it;
          if (sk.first_byte_seen && !sk.xfer()->memory)
            sizer.Observe(sk.first_byte - sk.launched, sk.next.load() - sk.range_begin,
                          clock->Now() - sk.first_byte);
          --impl.in_flight_total;
          impl.wake = true;  // a connection is free: launch into it without waiting
          it = impl.sinks.erase(it);
        } else {
          ++it;
        }
      }
    }

    // Durability on a clock and by size; hashing; completion.
    auto now = clock->Now();
    for (Xfer* xp : active) {
      Xfer& x = *xp;
      if (x.done) continue;
      bool fetching, complete;
      uint64_t unsynced, hashable, written, durable_prefix;
      Clock::TimePoint last_sync;
      {
        std::lock_guard<std::mutex> lock(impl.mu);
        fetching = x.in_flight > 0 || !x.todo.empty();
        complete = x.received.Contains({0, x.fp->size});
        unsynced = x.unsynced;
        last_sync = x.last_sync;
        hashable = x.hash_busy.load() ? 0 : impl.HashableEnd(&x);
        written = x.written;
        durable_prefix = x.committed.PrefixEnd();
      }
      if (!x.memory && x.file && !x.file->poisoned()) {
        if (WritebackDue(written, x.kicked)) {
          x.file->StartWriteback(0, 0);
          x.kicked = written;
        }
        ByteRange drop = DroppableRange(durable_prefix, x.hashed.load(), x.dropped);
        if (drop.size() > 0) {
          x.file->DropCache(drop.begin, drop.size());
          x.dropped = drop.end;
        }
      }
      // Bytes waiting in blocks that are not whole yet (a slow link fills a block in seconds)
      // go to the file on the durability clock, so a kill loses no more than it did before
      // the window.
      if (x.file && !x.file->poisoned() && now - last_sync >= kSyncInterval) {
        result = impl.FlushPartialBlocks(&x);
        if (!result.ok()) {
          result = result.With(x.fp->path);
          break;
        }
        std::lock_guard<std::mutex> lock(impl.mu);
        unsynced = x.unsynced;
      }
      if (!x.memory && x.started && SyncDue(unsynced, now - last_sync, fetching)) {
        result = sync(x);
        if (!result.ok()) {
          result = result.With(x.fp->path);
          break;
        }
      }
      if (x.memory) {
        if (complete && !fetching) {
          x.hasher->Update(x.buffer.data(), x.buffer.size());
          result = finish(x);
          if (!result.ok()) break;
        }
        continue;
      }
      if (!x.hash_busy.load()) {
        if (!x.hash_error.ok()) {
          result = x.hash_error.With(x.fp->path);
          break;
        }
        bool posted = false;
        if (hashable > x.hashed.load() && x.file) {
          std::lock_guard<std::mutex> lock(impl.mu);
          posted = impl.PostHash(&x);
        }
        if (!posted && !x.hash_busy.load() && complete && !fetching &&
            x.hashed.load() == x.fp->size) {
          bool all_committed;
          {
            std::lock_guard<std::mutex> lock(impl.mu);
            all_committed = x.committed.Contains({0, x.fp->size});
          }
          if (all_committed || x.fp->size == 0) {
            result = finish(x);
            if (!result.ok()) break;
          }
        }
      }
    }
    std::erase_if(active, [](Xfer* x) { return x->done; });
    // Worked out after the pass: the pass that finishes the last transfer ends the loop (and
    // hands over the last small files) at once, not after one more wait for a wake that
    // nothing sends (50 ms at the end of every pull).
    bool all_done = waiting.empty() && active.empty();
    if (result.ok() && SmallBatchDue(small_batch.size(), now - small_since, all_done,
                                     small && small->Adopting()))
      adopt_small();
    if (result.ok()) result = record_small();
    // Done when the last small files are recorded too (checked after record_small: a batch
    // adopted in between is still pending, and wakes this thread).
    if (small && small->Pending()) all_done = false;
    if (result.ok()) result = flush();
    if (!result.ok()) break;

    bytes_fetched_ = impl.received_bytes.load();
    if (options_.on_progress &&
        (all_done || now - last_progress >= std::chrono::milliseconds(100))) {
      progress.bytes_done = std::min(plan.total_bytes, present_at_start + bytes_fetched_);
      options_.on_progress(progress);
      last_progress = now;
    }
    if (!impl.xfers.empty()) connections_ = governor.kept();
    wrote_ahead_ = impl.write_ahead.load();
    if (all_done) break;
    if (options_.cancel && options_.cancel->load()) {
      result = Status::Cancelled("transfer cancelled; every synced byte is kept");
      break;
    }

    std::unique_lock<std::mutex> lock(impl.mu);
    impl.cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return impl.wake; });
    impl.wake = false;
  }

  if (result.ok()) return Status::Ok();

  // Failure: stop everything, keep what is durable, record what failed.
  std::vector<uint64_t> cancel;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.stopping = true;  // no new hashing jobs
    for (auto& x : impl.xfers)
      cancel.insert(cancel.end(), x->fetch_ids.begin(), x->fetch_ids.end());
  }
  for (uint64_t fid : cancel) hub_.Cancel(fid);
  {
    std::unique_lock<std::mutex> lock(impl.mu);
    impl.cv.wait(lock, [&] {
      for (auto& s : impl.sinks)
        if (!s->finished) return false;
      return true;
    });
    // Wait for the writing threads, then for the hashing thread to let go of every transfer
    // (the blocks are spilled and freed below).
    impl.WaitWrites(lock);
    impl.cv.wait(lock, [&] {
      for (auto& x : impl.xfers)
        if (x->hash_busy.load()) return false;
      return true;
    });
  }
  // The batch holds only facts already true on disk (ranges synced, blobs adopted): record
  // them with the failures, or a blob adopted just before the failure would look unrecorded.
  // Each step is tried even when an earlier one failed (as much as possible is kept); the
  // first of their errors is added to the message, never dropped: the failure stays the
  // first cause, and the user learns that what was kept may be less than it could have been.
  Status cleanup;
  auto note = [&](Status s, const std::string& what) {
    if (!s.ok() && cleanup.ok()) cleanup = s.With(what);
  };
  if (small) {  // verified already: keep them
    adopt_small();
    small->Drain();
    note(record_small(), "adopting the verified small files");
  }
  for (auto& x : impl.xfers) {
    if (x->done || x->memory || !x->started || !x->file) continue;
    // Bytes still in blocks that were not whole yet go to the file, to be kept with the rest.
    if (!x->file->poisoned())
      note(impl.SpillBlocks(x.get()), "keeping the received bytes of " + x->fp->path);
    if (x->unsynced > 0 && !x->file->poisoned()) note(sync(*x), "syncing " + x->fp->path);
    v1::Event e;
    auto* tf = e.mutable_transfer_failed();
    tf->set_transfer_id(x->id);
    tf->set_reason(result.message());
    tf->set_code(static_cast<int>(result.code()));
    batch.push_back(std::move(e));
  }
  note(flush(), "recording what was kept");
  bytes_fetched_ = impl.received_bytes.load();
  if (!cleanup.ok())
    return result.WithNote("then, while keeping what was done: " + cleanup.message());
  return result;
}

}  // namespace modelsync::engine
