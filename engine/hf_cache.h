// The Hugging Face cache (huggingface_hub's layout, read by mlx-lm, transformers and `hf`):
// export a model modelsync holds into it, and import the blobs it already holds.
//
// Layout written and read (huggingface_hub file_download.py; docs "Manage the cache"):
//
//   <cache>/models--<org>--<name>/blobs/<content id>      the bytes: sha256 (LFS files) or
//                                                          git blob sha1 (other files)
//   <cache>/models--<org>--<name>/snapshots/<commit>/<path> -> ../../blobs/<id>  (relative
//                                                          symlink; one more ../ per directory)
//   <cache>/models--<org>--<name>/refs/<ref>               the commit, no newline
//
// and, read only, the shared store of huggingface_hub 1.x+ (utils/_shared_blobs.py):
// a repo's blobs/<id> may be a relative symlink to <cache>/blobs/<2 hex>/<xet hash>.
//
// ExportToHfCache(repo): the active, complete revision of a repo pulled by modelsync. Each blob
// is hard-linked from modelsync's blob store (no extra bytes on one file system), else
// reflinked, else copied (counted in `copied`). A new snapshot is built under
// snapshots/.modelsync-tmp-<commit> and renamed into place whole, so a huggingface_hub reader
// sees no snapshot or a complete one; files missing from an existing snapshot are added one
// by one (symlink under a temporary name, renamed into place). refs/<ref> is written last
// (temporary file, renamed), and only for a branch or tag (not a commit hash). Blobs already
// in the cache with the right size are kept. Requires the root's writer lock (a gc cannot
// remove a blob while it is linked). A revision added with add-local has no hub commit: refused.
//
// ImportFromHfCache(repos): for each models--org--name (all, or those named), every file of
// every snapshot, followed through its symlinks (within the cache only) to the bytes; each
// blob is linked (else copied) into modelsync's blob store under a temporary name, hashed
// there with the hash its name says (64 hex: sha256, 40 hex: git blob sha1) and adopted only
// when the digest matches: a BlobVerified event per blob. A snapshot file that is a regular
// file (a cache made without symlinks) has no id in its name: it is adopted under both its
// sha256 and its git blob sha1 (each true of its bytes; the hub names it by one of them).
// A damaged blob (digest or size not its name) is reported and skipped, never adopted.
// Afterwards `pull` of those repos finds the blobs and fetches none of their bytes.
//
// Errors: kInvalidArgument (bad repo id, not in the cache, no such cache, added with
// add-local), kNotFound (repo not pulled), kFailedPrecondition-like kPermanent (incomplete),
// kIOError / kNoSpace, kLocked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

// The cache huggingface_hub uses: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub
// (read by ConfigFromEnvironment into Config::hf_cache).

// "org/name" -> "models--org--name".
std::string HfCacheRepoFolder(const std::string& repo);

struct HfExport {
  std::string cache, repo, commit, ref, snapshot;  // snapshot: its full path
  uint64_t files = 0;
  uint64_t linked = 0;   // blobs hard-linked or reflinked from modelsync's store
  uint64_t copied = 0;   // blobs copied (another file system)
  uint64_t kept = 0;     // blobs the cache already had
  uint64_t bytes_copied = 0;
  bool snapshot_created = false;  // false: an existing snapshot was completed
};

Result<HfExport> ExportToHfCache(const Env& env, const std::string& root, const std::string& repo,
                                 const std::string& cache);

struct HfImportRepo {
  std::string repo;
  std::vector<std::string> snapshots;  // commits
  uint64_t files = 0;                  // snapshot files seen
  uint64_t adopted = 0, already = 0;   // blobs adopted now / already verified in the root
  uint64_t bytes_adopted = 0;
  std::vector<std::string> damaged;    // "path: why" of files not adopted
};

struct HfImport {
  std::string cache;
  std::vector<HfImportRepo> repos;
  std::vector<std::string> skipped;  // cache folders that are not org/name model repos
};

// repos empty: every model repo in the cache.
Result<HfImport> ImportFromHfCache(const Env& env, const std::string& root,
                                   const std::string& cache, const std::vector<std::string>& repos);

}  // namespace modelsync::engine
