// EventLog: the append-only event log of one root, in LMDB at <root>/.modelsync/log.
//
// Caveats first (LMDB's, and ours):
//  - One EventLog per log per process. LMDB forbids opening one environment twice in a
//    process (closing the second would drop the first's locks); Open refuses it (kLocked).
//  - Writers: LMDB serializes write transactions across processes, and Append numbers the
//    batch inside its transaction, so concurrent appenders never collide. Still, one writer
//    per root is the rule: take storage::RootLock first (engine::Journal does).
//  - Readers: a kReadOnly open works while a writer is appending (for `status`); it sees each
//    committed batch whole or not at all. Long read transactions keep old pages alive, so
//    Read/Replay hold one only while they run.
//  - Stale reader slots left by killed processes are cleared at every Open.
//  - No network file systems (LMDB's rule: its lock file needs local shared memory).
//
// Keys are sequence numbers 1, 2, 3, ... as 8-byte big-endian, appended (MDB_APPEND); values
// are framed records (storage/record_format.h, storage/LOG_FORMAT.md). Every Append is a
// durable commit (fsync) of one write transaction; a crash keeps whole batches or nothing.
//
// Damage is never skipped: a record that fails its checksum, is truncated, claims an
// oversized length, or a sequence number that is missing or malformed is kCorruption with the
// message "event #N is corrupt: <what>". A log written by a newer format is kVersion.
//
// Compaction (format version 2): DropEvents removes events and records their seqs in meta
// ("compacted"); readers accept a gap only where that record says so, and report each one
// (GapFn). Rewrite() then copies the environment compactly and swaps it in, so the file
// shrinks. A process that had the log open before a rewrite keeps reading the old copy
// (consistent, but it sees no new events: Replaced() says so; reopen).
//
// Thread safety: one owner thread. Read/Replay/LastSeq/GetSnapshot/Compacted may run on other
// threads concurrently with each other, but not concurrently with Append/PutSnapshot/
// DropEvents (the map may be resized there, which needs no other transaction open in this
// process) nor with Rewrite (it closes and reopens the environment).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "proto/events.pb.h"
#include "storage/seq_runs.h"

namespace modelsync::storage {

// The newest log format this binary reads (meta "format_version"), and the one it creates.
// 2 = 1 plus compaction (meta "compacted"). A new log is created as 1 (older binaries read
// it); it becomes 2 in the transaction of its first DropEvents (older binaries then refuse it
// with kVersion "upgrade modelsync").
inline constexpr uint32_t kLogFormatVersion = 2;
inline constexpr uint32_t kLogFormatCreated = 1;
// Largest snapshot payload accepted when decoding.
inline constexpr size_t kMaxSnapshotBytes = size_t{1} << 30;

// "<root>/.modelsync", "<root>/.modelsync/log", ...
std::string StateDir(const std::string& root);
std::string LogDir(const std::string& root);

// Called for each run of compacted (dropped) seqs a read passes: [first, last].
using GapFn = std::function<Status(uint64_t first, uint64_t last)>;

struct RewriteReport {
  uint64_t bytes_before = 0, bytes_after = 0;  // data.mdb sizes
};

struct Snapshot {
  uint64_t seq = 0;   // the projection includes events 1..seq
  std::string bytes;  // opaque to storage
};

class EventLog {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  struct Options {
    // Starting LMDB map size (rounded up to 4 KiB). The map doubles whenever a write finds it
    // full, up to max_map_bytes (then kNoSpace). Tests use a tiny start to exercise growth.
    size_t initial_map_bytes = size_t{64} << 20;
    size_t max_map_bytes = size_t{1} << 40;
    // Tests only (crash points): called at each step of Rewrite(): "copying", "copied",
    // "closed", ("set-aside", the two-rename swap only), "exchanged", "synced", "removed".
    std::function<void(const char* step)> on_rewrite_step;
    // Tests only: Rewrite swaps with two renames even where the atomic exchange works, so the
    // Linux build runs the path the posix build and exchange-less file systems take.
    bool rename_swap = false;
  };

  // Opens (kReadWrite: creates if missing, with its directories) the log of root.
  // Errors: kNotFound (kReadOnly and no log yet), kVersion (a newer format), kCorruption
  // (meta damaged), kLocked (already open in this process), kIOError / kNoSpace.
  static Result<std::unique_ptr<EventLog>> Open(const std::string& root, Mode mode);
  static Result<std::unique_ptr<EventLog>> Open(const std::string& root, Mode mode,
                                                const Options& options);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends batch in one durable write transaction; returns its sequence numbers (consecutive,
  // in batch order). Grows the map and retries when it is full, so a batch is never lost to
  // MDB_MAP_FULL. On error nothing of the batch is in the log. kInvalidArgument on kReadOnly.
  Result<std::vector<uint64_t>> Append(const std::vector<modelsync::v1::Event>& batch);

  // Appends to *out up to limit events with seq >= from (from 0 reads from the start), in
  // order. On error *out holds the events before the damaged one.
  Status Read(uint64_t from, size_t limit,
              std::vector<std::pair<uint64_t, modelsync::v1::Event>>* out);

  // Calls fold for every event with seq >= from, in order, inside one read transaction.
  // Stops at and returns the first non-OK status of fold or of the log. The Event reference
  // is valid only during the call.
  Status Replay(uint64_t from,
                const std::function<Status(uint64_t, const modelsync::v1::Event&)>& fold);

  // The same, calling on_gap for each compacted run it passes (before the event after it).
  Status Replay(uint64_t from,
                const std::function<Status(uint64_t, const modelsync::v1::Event&)>& fold,
                const GapFn& on_gap);

  // Removes the events at seqs (ascending, no duplicates) in one durable write transaction
  // that also records them in meta "compacted" (merged with earlier runs) and sets format
  // version 2. The caller holds the root's writer lock and decides which events may go
  // (engine::CompactionPlan). kInvalidArgument (nothing changed) on kReadOnly, unsorted
  // seqs, a seq not in the log, or the last event (it stays, so numbering never reuses a seq).
  Status DropEvents(const std::vector<uint64_t>& seqs);

  // The seqs compaction removed so far (empty for a log never compacted). kCorruption when
  // the record is damaged.
  Result<SeqRuns> Compacted();

  // Shrinks the file: copies every record (in key order, pages packed full) into a new
  // environment in "<path>.compact", fsyncs it, closes this handle's environment, swaps the two
  // directories atomically (renameat2 RENAME_EXCHANGE), fsyncs their parent, removes the old copy
  // and reopens. A crash at any point leaves the old or the new log at path, whole (a leftover
  // "<path>.compact" is removed by the next Rewrite). Where the exchange is unavailable (the
  // posix build; file systems that refuse it) the swap is two renames: the log to
  // "<path>.old", the copy to path. A crash between them leaves the whole old log only at
  // "<path>.old": a kReadOnly Open reads it there, a kReadWrite Open moves it back first (and,
  // after the second rename, removes it). storage/LAYOUT.md "log.old". The caller holds the root's writer lock
  // (no other writer may commit meanwhile). kInvalidArgument on kReadOnly; kIOError naming
  // the path (the log at path is then unchanged and this handle still open, unless reopening
  // failed, which the message says).
  Result<RewriteReport> Rewrite();

  // The last committed sequence number (0 for an empty log). kReadOnly opens look again each
  // call (a writer may have appended); kReadWrite returns what this handle knows.
  uint64_t LastSeq();

  // Stores (replacing) the snapshot called name, durably. Snapshots are framed and checked
  // like events. kInvalidArgument on kReadOnly or an empty name.
  Status PutSnapshot(std::string_view name, uint64_t seq, std::string_view bytes);
  // The snapshot called name; nullopt when none. kCorruption when it fails its checks.
  Result<std::optional<Snapshot>> GetSnapshot(std::string_view name);

  const std::string& path() const;  // the LMDB directory
  Mode mode() const;
  size_t map_bytes() const;         // the current map size (grows; for tests and the benchmark)
  uint64_t file_bytes() const;      // the size of data.mdb now
  uint32_t format_version() const;  // of the log as opened (2 after a DropEvents)
  // True when the directory at path is no longer the one this handle opened (another process
  // rewrote the log): this handle reads the old copy; reopen to see newer events.
  bool Replaced() const;
  // False only after a Rewrite whose reopen failed: every call then fails (kIOError).
  bool is_open() const;
  // Reader slots of dead processes that Open found and cleared (mdb_reader_check).
  int stale_readers_cleared() const;

 private:
  struct Impl;
  explicit EventLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelsync::storage
