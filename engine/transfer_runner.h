// TransferRunner: the fetch and verify steps of a Plan (planner.h step 4).
//
// For every FilePlan of kind kFetch/kResume it downloads the missing ranges through the Hub,
// in file order (ranges sized to the link: transfer_parallel.h RangeSizer), into memory
// blocks that are written at their offsets into the transfer's partial file, makes them
// durable and only then records them (write -> fdatasync -> RangesCommitted, invariant 1),
// hashes the file in order as its contiguous prefix grows (from the blocks while they are in
// memory, else read back from the file; engine/transfer_state.h "The memory window"), and,
// when every byte is there, compares the digest with the content id: a match
// adopts the partial into the blob store (BlobVerified); a mismatch discards the content
// (TransferFailed{discarded}) and fetches it once more under a new transfer id, then fails
// with kIntegrity naming the file. (kLink files with verify_blob are re-hashed before the
// run: engine/blob_check.h.)
//
// Files the planner marked in_memory (PlanOptions::small_file_bytes) are fetched into memory
// and, once verified, written into the blob store and adopted in batches (one file-system
// sync per batch) by a thread of their own (engine/small_files.h), so this thread only
// verifies them and launches the next; they are recorded (BlobVerified) when that thread
// hands them back as blobs. No partial file, no range events (a crash costs a re-fetch of the
// small files not yet recorded). Their fetches may use every connection up to the cap (one
// short request each: the time a request takes to come back limits them, not the bandwidth
// the governor measures).
//
// Durability clock (engine/transfer_cadence.h): a transfer's written bytes are synced and
// recorded when kSyncBytes have accumulated or kSyncInterval has passed, whichever comes
// first, so a kill loses about half a second of transfer at most. Bytes still in a block that
// is not whole yet are written out (ordinary writes) when kSyncInterval has passed, so a slow
// link keeps that bound too; whole blocks are written as they complete.
//
// Memory and backpressure: at most kWindowBlocks blocks (32 MiB) are held. When the network
// is faster than the hashing (loopback, a LAN), the fetches ahead of the hashed prefix pause
// (FetchSink::Ready: their connections stop reading, TCP slows the server) rather than push
// bytes out to be read back, and resume when blocks are freed. On a far link
// (TransferRunnerOptions::write_ahead) they do not pause: a paused connection's bandwidth is
// lost there, so the bytes the window has no room for go to the partial file (whole blocks
// written past the page cache, then given up) and are read back to be hashed, a block ahead
// of the hashing (engine/read_ahead.h); and range sizes are staggered (transfer_parallel.h,
// Staggered) so that the fetches end in file order instead of together. A near link turns
// to the same once fetches wait while the bytes come in at a fraction of what the CPU hashes
// (a near CDN capping each connection: transfer_parallel.h WriteAheadDue).
//
// PERF (page cache): where the file system takes O_DIRECT the blocks bypass the page cache
// altogether. Otherwise (and for the bytes written the ordinary way) fresh page-cache pages
// are slow to come by on small VMs, so the control thread starts writeback of a large
// partial every few MiB (sync_file_range WRITE, a hint) and drops the pages that are both
// hashed and durable (fadvise DONTNEED). Neither replaces the fdatasync before
// RangesCommitted.
//
// Threads: Run() is the control thread (journal, syncs, decisions); the Hub's loop thread
// calls the sinks (a copy into a block); kWriters writing threads write whole blocks; one
// hashing thread hashes; one more writes and adopts the small files (only when there are).
// Errors: the first failure stops the run: in-flight fetches are cancelled, everything
// written is synced and recorded, TransferFailed is logged for unfinished transfers, and the
// status is returned (kNoSpace, kIOError, kIntegrity, kTransient, kNotFound, ...).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "engine/journal.h"
#include "engine/planner.h"
#include "engine/transfer_parallel.h"

namespace modelsync::net {
class Hub;
}
namespace modelsync::storage {
class BlobStore;
class PartialStore;
}  // namespace modelsync::storage

namespace modelsync::engine {

class Materializer;

struct TransferProgress {
  uint64_t bytes_done = 0;  // present before the run + received
  uint64_t bytes_total = 0;
  uint64_t files_done = 0;
  uint64_t files_total = 0;
};

struct TransferRunnerOptions {
  // Most fetches in flight at once: the runner starts at start_connections and doubles while
  // the rate grows, and splits running fetches when connections are free
  // (engine/transfer_parallel.h).
  int connections = 8;
  // Fetches in flight at the start (ConnectionGovernor; StartConnections picks it from the
  // link's round trip); the cap above still bounds it.
  int start_connections = kStartConnections;
  // What a fetch does when the memory window has no room for its bytes (transfer_state.h):
  // false, it pauses until the hashed prefix catches up; true (a far link, FarLink), it goes
  // on and writes them to the file, to be read back when the prefix reaches them. On a far
  // link a paused connection's bandwidth is lost and the CPU has room for the read-back
  // (throttled 1 GiB, 16 connections at 50 MB/s: the frontier's one connection alone ran
  // for whole seconds; 2.1-2.3 -> ~1.9 s); near (loopback, a LAN) the CPU is the limit and
  // the read-back and buffered writes cost it (cold 1 GiB on loopback, always writing ahead:
  // 0.85 -> 1.6 s). False here, a run still turns to writing ahead when fetches wait on a
  // link slow for the CPU: a near CDN that caps each connection (WriteAheadDue).
  bool write_ahead = false;
  std::function<void(const TransferProgress&)> on_progress;  // ~10 Hz, control thread
  std::function<void(const std::string& path, uint64_t size, bool fetched)> on_file_done;
  // A small (in-memory) file is a blob now: called on the thread that adopted it (the small
  // files' writer, engine/small_files.h), never on the control thread, never two at once,
  // and not after Run() returns. Before its BlobVerified is recorded: for work that a crash
  // may lose (pull links the file into the staging tree, Materializer::Add).
  std::function<void(const std::string& path, const std::string& content_id)> on_small_blob;
  // Not owned; may be null: the model's staging tree, begun (Materializer::Begin). The small
  // files' writer then writes each small file straight into it and makes the blob from there
  // (SmallFileWriter); only that thread uses it until Run() returns.
  Materializer* small_files_tree = nullptr;
  // Not owned; may be null. Checked by the control loop: when true, Run() stops as on a
  // failure (fetches cancelled, written bytes synced and recorded) and returns kCancelled.
  const std::atomic<bool>* cancel = nullptr;
  // The durability cadence and progress rate are measured on this clock (the Env's; not
  // owned). nullptr = SystemClock::Default().
  const Clock* clock = nullptr;
};

class TransferRunner {
 public:
  TransferRunner(Journal& journal, net::Hub& hub, storage::PartialStore& partials,
                 storage::BlobStore& blobs, TransferRunnerOptions options);
  ~TransferRunner();

  // Runs step 4 of the plan. On return (OK or not) nothing is in flight.
  Status Run(const Plan& plan);

  uint64_t bytes_fetched() const { return bytes_fetched_; }
  // The number of fetches in flight Run() settled on (TransferRunnerOptions::connections is
  // its cap: engine/transfer_parallel.h); 0 before Run() or when nothing was fetched.
  int connections() const { return connections_; }
  // The number it started with (the governor's first target: start_connections, at most the
  // cap); 0 before Run() or when nothing was fetched.
  int start_connections() const { return start_connections_; }
  // Whether Run() wrote ahead of the hashing (TransferRunnerOptions::write_ahead, or turned
  // to it: WriteAheadDue).
  bool wrote_ahead() const { return wrote_ahead_; }

 private:
  Journal& journal_;
  net::Hub& hub_;
  storage::PartialStore& partials_;
  storage::BlobStore& blobs_;
  TransferRunnerOptions options_;
  uint64_t bytes_fetched_ = 0;
  int connections_ = 0;
  int start_connections_ = 0;
  bool wrote_ahead_ = false;
};

}  // namespace modelsync::engine
