// Journal: the event log of a root together with its projection (engine::State).
//
// Open loads the latest state snapshot and replays the events after it, so start-up costs the
// tail, not the whole history. Append stamps, commits (one durable LMDB transaction) and then
// folds the batch, so state() always equals the fold of the committed log.
//
// A kReadWrite journal holds the root's writer lock (<root>/.modelsync/lock) for its whole
// life; a second writer gets kLocked "root <path> is in use by pid N". A read-only journal
// takes no lock and works beside a running writer (it sees what was committed when it
// opened, or at its last Refresh()).
//
// Storage types stay out of this header (engine links storage privately): cli needs only it.
// Thread safety: one owner thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "engine/state.h"
#include "proto/events.pb.h"

namespace modelsync::engine {

using EventFn = std::function<Status(uint64_t seq, const modelsync::v1::Event& event)>;
// A run of events compaction removed, [first, last] (storage/LOG_FORMAT.md "Compaction").
using GapFn = std::function<Status(uint64_t first, uint64_t last)>;

// What CompactLog did.
struct LogCompaction {
  uint64_t events_dropped = 0;
  uint64_t bytes_before = 0, bytes_after = 0;  // data.mdb
  bool rewritten = false;     // the file was rewritten compactly (else only pages freed)
  std::string rewrite_error;  // why the rewrite failed (the events are dropped all the same)
};

struct JournalOptions {
  const Clock* clock = nullptr;  // stamps time_ms; nullptr = SystemClock::Default()
  bool wait_for_lock = false;    // kReadWrite: block until the current writer is gone
  std::function<void(int holder_pid)> on_wait;  // called once before blocking
  // Not owned; may be null. While waiting for the lock: kCancelled once it is true.
  const std::atomic<bool>* cancel = nullptr;
  // After an Append, write a snapshot when this many events followed the last one (0 = only
  // on WriteSnapshot()).
  uint64_t snapshot_every = 50'000;
  size_t initial_map_bytes = 0;  // LMDB starting map size; 0 = the storage default
  // Tests only (crash points): called before each Append's commit (after = false) and after
  // it succeeded (after = true), with the number of events in the batch.
  std::function<void(bool after, size_t events)> on_commit;
};

class Journal {
 public:
  // Errors: kLocked (another writer), kVersion (a newer log, or an event kind this binary does
  // not know), kCorruption ("event #N is corrupt: ..."), kIOError / kNoSpace.
  // A read-only open of a root with no log yet succeeds with an empty state.
  static Result<std::unique_ptr<Journal>> Open(const std::string& root, bool read_only);
  static Result<std::unique_ptr<Journal>> Open(const std::string& root, bool read_only,
                                               const JournalOptions& options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const State& state() const { return state_; }
  const std::string& root() const { return root_; }
  bool read_only() const { return read_only_; }

  // Stamps events whose time_ms is 0 with the clock, appends them in one durable
  // transaction and folds them into state(). Returns their sequence numbers. On error
  // neither the log nor state() changed. kInvalidArgument on a read-only journal.
  Result<std::vector<uint64_t>> Append(std::vector<modelsync::v1::Event> events);

  // Stores state() as the snapshot at state().last_seq.
  Status WriteSnapshot();

  // Read-only journals: folds what writers committed since Open (no-op when up to date).
  Status Refresh();

  // Calls fn for each committed event with seq >= from, in order (the raw log, not state),
  // and on_gap (when set) for each run of compacted events it passes.
  Status ForEachEvent(uint64_t from, const EventFn& fn, const GapFn& on_gap = {});

  // The same without a Journal (no state load, no lock): for `modelsync log`. A root with
  // no log yet has no events (OK). Not while this process has a Journal of root open (LMDB
  // allows one handle per process: kLocked); use ForEachEvent there.
  static Status ScanLog(const std::string& root, uint64_t from, const EventFn& fn,
                        const GapFn& on_gap = {});

  // Compaction (kReadWrite only): drops the events at drop (ascending; chosen by
  // engine::CompactionPlan so that state() does not change) in one durable transaction, then,
  // when rewrite and something was dropped, rewrites the log file compactly
  // (storage::EventLog::Rewrite). A failed rewrite is reported in rewrite_error, not as an
  // error. Errors: kInvalidArgument (read-only, a seq that cannot go), the log's errors.
  Result<LogCompaction> CompactLog(const std::vector<uint64_t>& drop, bool rewrite);
  uint64_t LogFileBytes() const;  // data.mdb now (0 without a log)

  // Where start-up began: the snapshot's seq (0 = full replay) and, when a snapshot was
  // present but unusable (damaged, another state version), why it was ignored.
  uint64_t loaded_snapshot_seq() const { return loaded_snapshot_seq_; }
  const std::string& snapshot_note() const { return snapshot_note_; }

 private:
  struct Impl;
  Journal() = default;
  Status Load();

  std::unique_ptr<Impl> impl_;
  std::string root_;
  bool read_only_ = true;
  JournalOptions options_;
  State state_;
  uint64_t snapshot_seq_ = 0;  // seq of the newest snapshot stored
  uint64_t loaded_snapshot_seq_ = 0;
  std::string snapshot_note_;
};

}  // namespace modelsync::engine
