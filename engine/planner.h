// The planner: a PURE function from (target manifest, state folded from the log, an
// observation of the disk) to the actions that make the disk equal to the target.
// No I/O, no clock, no randomness: the same inputs give the same Plan, so it is tested with
// random inputs by the thousand (tests/planner_test.cc). Observe() (observe.h) fills the
// Observation; the executor runs the Plan and re-plans until NothingToDo().
//
// Before Observe(): call Materializer::CleanStaging(repo), so that a two-rename swap cut by a
// crash (file systems without RENAME_EXCHANGE) is restored before the disk is looked at.
// Execution order the executor must follow (each step's rationale in brackets):
//  1. clean_staging: remove leftover staging dirs of this repo [a crash mid-build];
//  2. remove_markers [a marker must never claim an incomplete model];
//  3. remove_blobs (blobs on disk whose size contradicts the manifest) and
//     discard_transfers (TransferFailed{discarded} + delete the partial);
//  4. per file: kFetch (TransferStarted, create the partial, fetch `fetch`), kResume (reopen
//     the partial, re-hash the committed ranges, fetch `fetch`), then verify and adopt the
//     blob (BlobVerified); kLink with verify_blob: re-hash the blob, record BlobVerified, or
//     remove it and plan again when it hashes wrong (engine/blob_check.h, before the fetches);
//  5. build_dir: materialize every file from blobs, carry user_files over, and swap the
//     directory in atomically;
//  6. activate: RevisionActivated(commit);
//  7. write_marker: create <root>/<model_id>, MarkerWritten (the caller runs the
//     loadability check first: a revision that fails it gets no marker).
// Markers are only ever those of in.model_id: a marker of another id this repo had before is
// the caller's (pull moves it after the new one is written).
//
// Content ids: ContentIdOf(entry) = lfs_sha256 when set (LFS file), else git_oid.
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_range.h"
#include "base/status.h"
#include "engine/state.h"
#include "proto/events.pb.h"

namespace modelsync::engine {

const std::string& ContentIdOf(const modelsync::v1::FileEntry& f);
inline bool IsLfs(const modelsync::v1::FileEntry& f) { return !f.lfs_sha256().empty(); }

// One entry below models/<org>/<name>/ (directories are not listed, only what they hold).
struct ObservedFile {
  enum class Type { kFile, kSymlink, kOther };
  Type type = Type::kFile;
  uint64_t size = 0;
  std::string blob_id;  // the content id whose blob is this very inode (a hard link); else ""
  bool read_only = false;  // no write permission bits (the materializer's copies are 0444)
  bool other_device = false;  // on another file system than the blob store (no hard links)
  bool clone_fs = false;      // on a file system with reflinks (btrfs, XFS): copies are clones
  bool operator==(const ObservedFile&) const = default;
};

// Is the observed file the materialized copy of content `cid` of `size`? A hard link to its
// blob; or, where links are impossible (the file is on another file system than the blob
// store; on the same one a copy is relinked, e.g. after `cp -r`) or where model files are
// reflinks (btrfs, XFS), a read-only regular file of that size at a path the log materialized with that content (a
// cheap check, as for links; verify re-hashes).
bool IsMaterialized(const ObservedFile& f, const std::string& cid, uint64_t size,
                    const std::map<std::string, std::string>& materialized,
                    const std::string& path);

// What is on disk, as Observe() saw it.
struct Observation {
  std::map<std::string, uint64_t> blobs;            // content id -> size, in blobs/
  std::map<uint64_t, uint64_t> partials;            // transfer id -> size, in partial/
  bool model_dir_exists = false;                    // models/<org>/<name> is a directory
  std::map<std::string, ObservedFile> model_files;  // repo-relative path -> what it is
  std::set<std::string> markers;                    // marker files present (among those asked)
  bool staging_exists = false;                      // leftover staging/old dir of this repo
};

struct PlanInput {
  std::string repo;      // "org/name", validated
  std::string commit;    // the commit resolved for this sync
  std::string model_id;  // the marker's name, validated
  // The target manifest after include/exclude filtering. Paths validated and unique;
  // content ids valid (40/64 hex). MakePlan refuses duplicates (kInvalidArgument).
  std::vector<modelsync::v1::FileEntry> files;
  // Whether the complete revision gets a marker (engine/loadability.h decides; the caller
  // passes what it knows). false: no marker is written and an existing one of model_id is
  // removed.
  bool want_marker = true;
};

struct PlanOptions {
  // A fetch range is at most this long, so a large file spreads over several connections.
  // 0 = never split.
  uint64_t chunk_size = 64ull << 20;
  // A kFetch file of at most this many bytes is fetched into memory (FilePlan::in_memory): no
  // partial file, no range events, adopted in a batch with one sync (a kill re-fetches it
  // whole). 8 MiB = engine::kDefaultSmallFileBytes (env.h, MODELSYNC_SMALL_FILE_BYTES).
  uint64_t small_file_bytes = 8ull << 20;
};

enum class FileAction {
  kIntact,  // models/ already holds this file as a link to its verified blob
  kLink,    // the content is (or will be, see fetched_by) a blob: link it, fetch nothing
  kResume,  // a live transfer of this content: fetch only the ranges it has not committed
            // (an empty `fetch` = all committed already: re-hash and adopt it)
  kFetch,   // fetch it all under a new transfer id
};
const char* FileActionName(FileAction a);

struct FilePlan {
  std::string path;
  std::string content_id;
  uint64_t size = 0;
  bool lfs = false;
  FileAction action = FileAction::kFetch;
  uint64_t transfer_id = 0;      // kResume / kFetch
  std::vector<ByteRange> fetch;  // kResume / kFetch: ranges to fetch, in order, <= chunk_size
  uint64_t committed_bytes = 0;  // kResume: bytes already durable in the partial
  bool verify_blob = false;      // kLink: blob on disk but not recorded: re-hash it first
  bool in_memory = false;        // kFetch: fetched into memory (PlanOptions::small_file_bytes)
  std::string fetched_by;        // kLink: the path of this plan that fetches the content
};

struct Plan {
  std::string repo, commit, model_id;
  std::vector<FilePlan> files;              // one per manifest file, sorted by path
  std::vector<std::string> removals;        // active revision's paths absent from the target
  std::vector<std::string> remove_blobs;    // blobs whose size contradicts the manifest
  std::vector<uint64_t> discard_transfers;  // live transfers of needed content not resumable
  bool clean_staging = false;
  std::vector<std::string> remove_markers;  // step 2
  // The user's files in the model directory (regular files the log never materialized for
  // this repo, not links to any blob, at paths the target does not have): never removed; the
  // materializer carries them into every new tree (storage/LAYOUT.md "The user's files").
  std::vector<std::string> user_files;
  bool build_dir = false;
  bool activate = false;
  bool write_marker = false;
  uint64_t next_transfer_id = 1;  // the state's next id after those this plan uses

  // Totals over the distinct content ids of the target: total = fetch + present.
  uint64_t total_bytes = 0;
  uint64_t fetch_bytes = 0;     // bytes to download
  uint64_t present_bytes = 0;   // in verified blobs or committed ranges already
  uint64_t allocate_bytes = 0;  // new partial files to preallocate (disk space needed)
  uint64_t free_bytes = 0;      // blobs only the old revision used: what gc can free after

  bool NothingToDo() const;
};

// The plan. kInvalidArgument (naming the path) on duplicate paths or a malformed content
// id in the input; everything else is a valid input.
Result<Plan> MakePlan(const PlanInput& in, const State& state, const Observation& obs,
                      const PlanOptions& opts = {});

// The user's own files in an observed model directory: regular files that are not links to
// any blob, at paths neither in `target` nor in `materialized` (what the log put there).
std::vector<std::string> UserFiles(const Observation& obs, const std::set<std::string_view>& target,
                                   const std::map<std::string, std::string>& materialized);

// Human-readable one-line-per-action summary (for logs and tests).
std::string DescribePlan(const Plan& p);

}  // namespace modelsync::engine
