// Internal to storage: EventLog's state, shared by event_log.cc (open, append, read) and
// event_log_compact.cc (dropping events, rewriting the environment).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "storage/event_log.h"
#include "storage/lmdb_util.h"
#include "storage/record_format.h"
#include "storage/seq_runs.h"

namespace modelsync::storage {

inline constexpr char kMetaFormatKey[] = "format_version";
inline constexpr char kMetaCompactedKey[] = "compacted";
// Largest "compacted" payload accepted when decoding.
inline constexpr size_t kMaxCompactedBytes = size_t{64} << 20;

std::string EventCorrupt(uint64_t seq, std::string_view what);

// Where a rewrite without the atomic exchange sets the old log aside: "<log>.old".
std::string OldLogDir(const std::string& log_dir);
// Finishes a two-rename swap a crash interrupted (EventLog::Rewrite): puts "<log>.old" back
// when no log is at log_dir, else (the copy was moved in) syncs the parent and removes it.
// Only a writer calls it (it holds the root's lock). OK when there is nothing to do.
Status RecoverRewrite(const std::string& log_dir);

struct EventLog::Impl {
  using ScanFn = std::function<Status(uint64_t, const modelsync::v1::Event&, bool* more)>;

  std::string path;
  // The directory the environment was opened from: path, or OldLogDir(path) for a kReadOnly
  // open while an interrupted two-rename rewrite left the log only there.
  std::string dir;
  Mode mode = Mode::kReadOnly;
  Options options;
  MDB_env* env = nullptr;
  MDB_dbi events = 0, meta = 0, snapshots = 0;
  uint64_t last_seq = 0;
  int tail_fd = -1;  // <log>.tail, kReadWrite only (see TailPath)
  bool no_lock = false;  // kReadOnly opened with MDB_NOLOCK (lock.mdb not writable)
  uint32_t format_version = 0;  // of the open log
  size_t map_bytes = 0;
  int stale_readers = 0;
  std::pair<dev_t, ino_t> id{};  // of the log directory this env was opened from
  RecordCodec writer_codec;
  std::string writer_payload, writer_record;  // scratch of Append/PutSnapshot
  Status record_status;                       // a body's Status inside WriteTxn

  ~Impl() {
    CloseEnv();
    if (tail_fd >= 0) ::close(tail_fd);
  }

  // Opens the environment at path (and its databases, checking the format). Retries when the
  // directory was swapped by a rewrite while it opened (so lock.mdb and data.mdb come from
  // the same directory).
  Status OpenEnv();
  Status OpenEnvOnce(bool* swapped);
  void CloseEnv();
  Status Usable() const;  // kIOError when a failed Rewrite left no environment open
  Status Grow();
  Status ReadLast(MDB_txn* txn, uint64_t* last);
  Status OpenDbs(MDB_txn* txn, unsigned flags);
  Status CheckFormat(MDB_txn* txn);
  // The compacted seqs recorded in meta (empty when none). kCorruption when damaged.
  Status ReadCompacted(MDB_txn* txn, SeqRuns* out);
  Status Scan(uint64_t from, const ScanFn& fn, const GapFn* on_gap);
  void Step(const char* step) {
    if (options.on_rewrite_step) options.on_rewrite_step(step);
  }

  template <typename Body>
  Status WriteTxn(std::string_view what, Body body) {
    for (;;) {
      internal::Txn txn;
      int rc = txn.Begin(env, 0);
      if (rc != 0) return internal::FromMdb(rc, what);
      rc = body(txn.get());
      if (rc == 0) rc = txn.Commit();
      if (rc == MDB_MAP_FULL) {
        txn.Abort();
        MS_RETURN_IF_ERROR(Grow());
        continue;
      }
      if (rc == -1) return record_status;  // body failed with a Status
      // LMDB turns a short write on a full disk into EIO: when the log's file system has
      // (next to) no space left, say so (kNoSpace, exit 6), not "I/O error, check the disk".
      if (rc == EIO && internal::NearlyFull(path))
        return Status::NoSpace(std::string(what) + ": no space left on the device of " + path +
                                   " (the log's write came up short; free some disk space and "
                                   "retry: nothing committed is lost)",
                               ENOSPC);
      if (rc != 0) return internal::FromMdb(rc, what);
      return Status::Ok();
    }
  }
};

}  // namespace modelsync::storage
