// Materializer: builds models/<org>/<name>/ for a revision from verified blobs, swaps it
// into place atomically, and writes/removes marker files.
//
// Materialize(repo, files):
//   1. clean leftovers of an earlier crash (CleanStaging);
//   2. build models/<org>/.<name>.staging: subdirectories, then each file as a reflink of
//      blobs/<content-id> where the file system makes them (btrfs, XFS: an edit of a model file
//      then stays in it), else a hard link (a copy, read-only, when linking fails with EXDEV,
//      EPERM or EMLINK); every model file is read-only (0444);
//      every directory of the staging tree is fsynced, deepest first;
//   3. swap: renameat2(RENAME_EXCHANGE) of staging and models/<org>/<name> when the latter
//      exists (the old tree is now at the staging name and is removed), a plain rename
//      otherwise; models/<org> is fsynced after the swap.
//      On a file system without RENAME_EXCHANGE: rename name -> .<name>.old, rename staging
//      -> name, fsync, remove .old; CleanStaging restores .old if a crash hit in between.
// A caller may build step 2 while the blobs arrive: Begin(repo) does step 1 and makes the
// staging directory, Add(path, id) links one file into it (pull links each small file as it
// is adopted, while the rest download), and Materialize(repo, files) then links only the files
// not added yet and goes on with the syncs and the swap. Materialize alone does all of it.
// A small file's bytes may even be written into the staging tree first (Stage) and, once a
// sync has made them durable, made the blob from there (Publish: a hard link into blobs/),
// one directory entry fewer per file than a blob made under a temporary name, renamed, and
// linked in (engine/small_files.h).
// A crash at any point leaves models/<org>/<name> wholly old or wholly new (or absent, if it
// did not exist before); leftovers are removed by the next run's CleanStaging.
//
// Everything is relative to directory fds with no symlink followed: a symlink planted at
// models, models/<org> or inside the tree makes the call fail with an error naming it;
// nothing is ever written outside the root.
//
// Every side effect goes through storage::FileSystem (the Dir handles given), so fault and
// crash-point tests inject at each step. Errors: kInvalidArgument (bad repo, path, content
// id or model id — named), kNotFound (a blob is missing: names the file and the blob),
// kIOError / kNoSpace from the file system (naming the path).
// Thread safety: one thread; one materializer per root at a time (the root lock).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {

struct MaterialFile {
  std::string path;        // repo-relative; validated again here
  std::string content_id;  // blob to link
};

struct MaterializeStats {
  uint64_t linked = 0;
  uint64_t cloned = 0;  // reflinks (btrfs, XFS)
  uint64_t copied = 0;
  uint64_t copied_bytes = 0;
};

class Materializer {
 public:
  // root and blobs must outlive the materializer.
  Materializer(storage::Dir& root, storage::BlobStore& blobs) : root_(root), blobs_(blobs) {}

  // user_files (may be null): repo-relative paths of the user's own files in the current
  // models/<org>/<name>/ (planner.h Plan::user_files). Each is hard-linked (copied where
  // links fail) into the new tree before the swap, so it survives the swap and a crash at
  // any point (the old tree still holds it until the swap is durable). A path the new
  // revision also has is skipped (the caller moves such a file aside first).
  //
  // The swap is one atomic exchange where the platform and file system have one
  // (docs/PLATFORM.md); elsewhere it is two renames, between which models/<org>/<name> is
  // missing for a moment. Before such a swap, the hook set with SetBeforeUnsafeSwap runs: the
  // caller removes the model's marker there (and records it), so no marker ever names a
  // missing directory (DESIGN.md invariant 2).
  Status Materialize(const std::string& repo, const std::vector<MaterialFile>& files,
                     MaterializeStats* stats = nullptr,
                     const std::vector<std::string>* user_files = nullptr);
  // Steps 1 and the start of 2 ahead of Materialize (see the top of this file). A second
  // Begin, or Materialize of another repo, starts over.
  Status Begin(const std::string& repo);
  // Links `path` (repo-relative) to blob `content_id` in the tree begun. Best effort: on an
  // error nothing is recorded and Materialize links the file (and reports the error) itself.
  Status Add(const std::string& path, const std::string& content_id);
  // Creates `path` (repo-relative) new and read-only (0444) in the tree begun, for the caller
  // to write a verified small file's bytes into, and sync (Dir::SyncFileSystem, or
  // SyncStaged). kInvalidArgument where model files are reflinks (the file and its blob must
  // not be one inode there) or before Begin; any error: the caller makes the blob another way
  // and nothing of `path` is left. Not added until Published.
  Result<std::unique_ptr<storage::File>> Stage(const std::string& path);
  // fsyncs a file Staged (where the file system cannot be synced whole).
  Status SyncStaged(const std::string& path);
  // Makes the Staged (and synced) `path` the blob `content_id`: a hard link blobs/<id> ->
  // the file (blobs/ is not synced here: the caller syncs it once per batch). Where the blob
  // exists already (a second path with the same bytes), the staged file is replaced by a
  // link to it. Then `path` is added. The caller verified the bytes against content_id.
  Status Publish(const std::string& path, const std::string& content_id);
  // The caller has just synced the whole file system (Dir::SyncFileSystem): every directory
  // of the tree begun is durable as it stands, and Materialize syncs only those changed
  // since (a pull of many small files: the writer's last batch sync covers the tree).
  void NoteSynced();
  void SetBeforeUnsafeSwap(std::function<Status()> hook) { before_unsafe_swap_ = std::move(hook); }
  // Removes models/<org>/.<name>.staging; if models/<org>/<name> is missing but .<name>.old
  // exists (a two-rename swap was interrupted), renames it back first. Missing dirs are OK.
  Status CleanStaging(const std::string& repo);
  // Removes models/<org>/<name> (renamed to the staging name first, so a crash leaves only
  // a leftover for CleanStaging). Missing is OK.
  Status RemoveModel(const std::string& repo);

  // OK when <root>/<model_id> is absent or an empty regular file (a marker); kInvalidArgument
  // naming it when it is anything else (a user's file, a directory): never overwritten.
  Status CheckMarkerSlot(const std::string& model_id);
  // <root>/<model_id>: created empty (an existing empty one is kept), fsynced, root fsynced.
  // kInvalidArgument (CheckMarkerSlot) when a non-empty file or a directory is there.
  Status WriteMarker(const std::string& model_id);
  // Removes <root>/<model_id> when it is a marker (an empty regular file; missing is OK;
  // anything else is left alone) and fsyncs the root.
  Status RemoveMarker(const std::string& model_id);
  bool HasMarker(const std::string& model_id);

 private:
  // The staging tree being built (Begin .. the swap).
  struct Build {
    std::string repo;
    std::unique_ptr<storage::Dir> org, top;
    // Only the chain from the top to the directory in use is open (files come sorted, so a
    // chain is reused by neighbours), never one descriptor per directory: a tree of
    // thousands of directories stays far below the open-file limit (256 on macOS).
    std::vector<std::pair<std::string, std::unique_ptr<storage::Dir>>> chain;  // (rel, dir)
    // Directories (rel paths; "" the top) made, or with entries made or removed, since the
    // tree was begun or last synced whole (NoteSynced): Materialize fsyncs these.
    std::set<std::string> unsynced;
    std::set<std::string> added;       // files linked (repo paths)
    std::set<std::string> staged;      // files Staged, not Published (repo paths)
    bool clone = false;                // reflinks work here (until one says no)
    MaterializeStats stats;
  };
  Result<std::unique_ptr<storage::Dir>> OpenOrg(const std::string& repo, bool create);
  Result<storage::Dir*> DirOf(Build& b, const std::string& rel);
  Status LinkOne(Build& b, const std::string& path, const std::string& content_id);
  storage::Dir& root_;
  storage::BlobStore& blobs_;
  std::function<Status()> before_unsafe_swap_;
  std::unique_ptr<Build> build_;
};

}  // namespace modelsync::engine
