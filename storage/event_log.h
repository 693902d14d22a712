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
// Thread safety: one owner thread. Read/Replay/LastSeq/GetSnapshot may run on other threads
// concurrently with each other, but not concurrently with Append/PutSnapshot (the map may be
// resized there, which needs no other transaction open in this process).
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

namespace modelsync::storage {

// The log format this binary writes and the newest it reads (meta "format_version").
inline constexpr uint32_t kLogFormatVersion = 1;
// Largest snapshot payload accepted when decoding.
inline constexpr size_t kMaxSnapshotBytes = size_t{1} << 30;

// "<root>/.modelsync", "<root>/.modelsync/log", ...
std::string StateDir(const std::string& root);
std::string LogDir(const std::string& root);

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
  size_t map_bytes() const;  // the current map size (grows; for tests and the benchmark)
  // Reader slots of dead processes that Open found and cleared (mdb_reader_check).
  int stale_readers_cleared() const;

 private:
  struct Impl;
  explicit EventLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelsync::storage
