// Recovery commands over the log (issue #6): rebuild, verify, gc and remove.
//
// The log is the source of truth; these functions make the disk agree with it again.
//  - Rebuild: for every repo with an active revision (and files), recreate
//    models/<org>/<name>/ from the blob store and the marker (only when every file's blob is
//    present), remove marker files the log does not justify. No network unless fetch: then
//    the files whose blobs are gone are re-downloaded by Pull() at the active commit with the
//    active include/exclude (only the missing content moves). Idempotent.
//  - Verify: re-hashes every file of each active revision (sha256 for LFS content, git blob
//    sha1 otherwise) on 2 threads with large sequential reads; reports missing, damaged,
//    extra and unverifiable files. repair: removes the damaged blobs and every model file
//    linked to them, then Pull()s each affected repo at its active commit (fetches only that
//    content).
//  - Gc: removes blobs no active revision of any repo references and partial files no live
//    transfer owns, under the root's writer lock (so no live transfer can be touched), then
//    writes a projection snapshot and compacts the log: drops the range events of finished
//    transfers (CompactionPlan, engine/state_compact.h) and rewrites the file compactly.
//  - Remove: removes the repo's own marker and its files from the model directory (the
//    user's own files stay, and so does the directory holding them), then records
//    RepoRemoved: the fold forgets the repo (untracked, its model id free, gone from status);
//    blobs are left for Gc. Works on a repo whose first pull never completed.
//
// A repo whose active revision has no files left (after Remove) is skipped by
// Rebuild/Verify and references nothing for Gc.
//
// Errors: kCorruption "event #N is corrupt: ..." (the log), kLocked (another writer; these
// wait unless wait_for_lock is false), kNotFound (Remove/Verify of an unknown repo),
// kIOError/kNoSpace naming the path, and Pull's errors when fetching.
// Thread safety: each call runs on the calling thread (Verify uses 2 internal workers; its
// progress callback is called under a lock, from any of them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

struct RebuildOptions {
  std::string root;
  bool fetch = false;    // re-download content whose blobs are gone (network)
  std::string endpoint;  // for fetch; empty = env.config.endpoint
  bool wait_for_lock = true;
};

struct RebuildRepo {
  std::string repo, commit, model_id;
  uint64_t files = 0;
  bool dir_rebuilt = false;          // models/<org>/<name> was (re)materialized
  bool marker_written = false;       // the marker file was (re)created
  bool marker_removed = false;       // removed: the model is incomplete or does not load
  bool loadable = false;             // complete and passes the loadability rule
  std::string no_marker_reason;      // complete but gets no marker: why (loadability.h)
  std::vector<std::string> missing;  // paths whose blob is gone (before any fetch)
  bool fetched = false;              // fetch ran for this repo and succeeded
  // A converted model whose outputs were gone: converted again from its source (still in
  // the root, or at its local path, with the recorded sha256), no network involved.
  bool reconverted = false;
  std::string reconverted_from;
  uint64_t bytes_fetched = 0;
  std::string error;  // fetch failed: why (the other repos are still handled)
};

struct RebuildReport {
  std::vector<RebuildRepo> repos;
  std::vector<std::string> stray_markers_removed;  // marker names the log did not justify
  bool complete() const;  // every repo complete (nothing missing after fetch, no error)
};

Result<RebuildReport> Rebuild(const Env& env, const RebuildOptions& options);

struct VerifyProgress {
  uint64_t bytes_done = 0, bytes_total = 0, files_done = 0, files_total = 0;
};

inline constexpr std::chrono::milliseconds kVerifyProgressEvery{100};

struct VerifyOptions {
  std::string root;
  std::string repo;  // empty = every repo with an active revision
  bool repair = false;
  std::string endpoint;  // for repair
  int threads = 2;
  // Called under a lock (one call at a time, from any thread): every progress_every
  // while files hash, with the bytes hashed so far, and as each file ends.
  std::function<void(const VerifyProgress&)> on_progress;
  std::chrono::milliseconds progress_every = kVerifyProgressEvery;
  // Not owned; may be null. Once *cancel is true, hashing stops within one 4 MiB read and
  // Verify returns kCancelled (before any repair starts; a repair under way is a Pull, which
  // stops as a cancelled pull does).
  const std::atomic<bool>* cancel = nullptr;
};

struct VerifyIssue {
  // kMarker: a marker disagrees with the log or the loadability rule (missing, present but
  // never written, stray, claimed by two repos, or claiming a model that does not load).
  enum class Kind { kMissing, kDamaged, kExtra, kUnverifiable, kMarker };
  Kind kind = Kind::kDamaged;
  std::string repo, path, content_id;
  std::string detail;  // what was found ("sha256 abc... != def...", "not a regular file")
};
const char* VerifyIssueName(VerifyIssue::Kind k);

// A model directory that holds, complete, a revision the log materialized but never
// activated: a crash hit between the directory swap and the RevisionActivated commit. Not
// damage (every file is checked against that revision instead); the next pull records it,
// `rebuild` returns to the active revision. Also: a swap that could not be atomic
// (docs/PLATFORM.md) interrupted between its two renames: no models/<org>/<name>, the active
// revision whole in models/<org>/.<name>.old (dir_commit == active_commit; checked there).
struct VerifyInterrupted {
  std::string repo, dir_commit, active_commit;
};

struct VerifyReport {
  uint64_t repos = 0, files = 0, bytes_hashed = 0;
  std::vector<VerifyIssue> issues;  // found by the check (before any repair)
  std::vector<VerifyInterrupted> interrupted;
  bool repaired = false;            // repair ran and succeeded for every affected repo
  uint64_t bytes_fetched = 0;       // by the repair
  std::vector<std::string> repair_errors;
  bool damaged() const;  // any missing or damaged file
};

Result<VerifyReport> Verify(const Env& env, const VerifyOptions& options);

struct GcOptions {
  std::string root;
  bool dry_run = false;
  bool snapshot = true;  // write a projection snapshot afterwards (not in dry_run)
  // With snapshot: drop the range events of finished transfers (CompactionPlan) and rewrite
  // the log file compactly (storage/LOG_FORMAT.md "Compaction"). dry_run only counts them.
  bool compact = true;
  bool wait_for_lock = true;
};

struct GcReport {
  std::vector<std::pair<std::string, uint64_t>> blobs;  // content id, bytes
  std::vector<std::pair<uint64_t, uint64_t>> partials;  // transfer id, bytes
  // Temporary files a crash left in blobs/ (".tmp-<id>", "add-local.tmp"): name, bytes.
  std::vector<std::pair<std::string, uint64_t>> temp_files;
  uint64_t bytes_freed = 0;                             // (or that would be freed, dry_run)
  uint64_t blobs_kept = 0;
  bool snapshot_written = false;
  uint64_t snapshot_seq = 0;
  // Compaction of the log (or what it would do, dry_run).
  uint64_t events_compacted = 0;       // range events of finished transfers + file events of replaced revisions dropped
  uint64_t compacted_event_bytes = 0;  // their records' approximate size in the log
  uint64_t live_range_events = 0;      // range events of live transfers (kept for resume)
  uint64_t log_bytes_before = 0, log_bytes_after = 0;  // data.mdb (after = before, dry_run)
  bool log_rewritten = false;                          // data.mdb was rewritten compactly
  std::string rewrite_error;  // why not (the events were dropped all the same)
};

Result<GcReport> Gc(const Env& env, const GcOptions& options);

struct RemoveOptions {
  std::string root;
  std::string repo;
  bool wait_for_lock = true;
};

struct RemoveReport {
  std::string repo, model_dir, marker;  // absolute paths removed (empty if there was none)
  uint64_t files = 0;                   // files of the active revision removed
  std::vector<std::string> user_files;  // the user's own files, kept in model_dir
};

Result<RemoveReport> Remove(const Env& env, const RemoveOptions& options);

}  // namespace modelsync::engine
