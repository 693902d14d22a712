// BlobStore: verified content, <root>/.modelsync/blobs/<content-id>.
//
// A content id is the hub's id for a file's bytes: the LFS sha256 (64 lowercase hex) or the
// git blob sha1 (40 lowercase hex). Only content that has been hashed and matched its id is
// ever Adopt()ed, so a blob's presence means "verified" (the log's BlobVerified says so too).
// Blobs are read-only (0444) once adopted; model directories hard-link to them.
//
// Layout is flat (no fan-out): a model has tens of files, a device a few thousand blobs.
// Names in blobs/ that are not valid content ids are ignored by List(): they are temporary
// files a crash left (".tmp-<id>" of a small-file batch, "add-local.tmp"); ListLeftovers()
// names them and gc removes them under the root's writer lock.
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/file_system.h"

namespace modelsync::storage {

class BlobStore {
 public:
  // Opens <root>/.modelsync/blobs, creating it (and .modelsync) when missing.
  // With create=false a missing directory is kNotFound and nothing is created (read-only
  // callers: Observe, status).
  static Result<std::unique_ptr<BlobStore>> Open(Dir& root, bool create = true);
  // 40 or 64 lowercase hex characters.
  static bool IsValidId(std::string_view id);

  bool Has(std::string_view id);
  // Full path of the blob (whether or not it exists). id must be valid.
  std::string PathOf(std::string_view id) const;
  // Size on disk. kNotFound when absent, kInvalidArgument for a malformed id.
  Result<uint64_t> Size(std::string_view id);
  // lstat of the blob (dev/ino let a caller tell whether a file is a link to it).
  Result<FileInfo> Stat(std::string_view id);

  // Moves the verified file from/name into the store as `id`: chmod 0444, fsync the file,
  // rename into blobs/, fsync blobs/ and from. If the blob already exists (same content), the
  // source is removed instead. The caller must have verified the content against id.
  Status Adopt(Dir& from, std::string_view name, std::string_view id);
  // Adopt() for many small files at once, in two parts, so that a caller can make other
  // files blobs in the same batch (engine/small_files.h) and sync blobs/ once after all:
  // SyncBatch makes from's files durable with one Dir::SyncFileSystem() (where that is
  // unsupported, *per_file is set and each named file is fsynced instead); AdoptSynced then
  // renames each synced file to its id (or removes it where the blob is there already) and
  // syncs neither directory. Each file was made read-only (0444) by the caller when it wrote
  // it (a reopen per file to chmod it cost more than its write). On error some may be
  // adopted, none half.
  Status SyncBatch(Dir& from, const std::vector<std::pair<std::string, std::string>>& name_ids,
                   bool* per_file);
  Status AdoptSynced(Dir& from, const std::vector<std::pair<std::string, std::string>>& name_ids);
  // Makes from/name (verified against id and synced by the caller) the blob `id` with a hard
  // link, from/name staying where it is (a model file sharing the blob's inode); where hard
  // links fail (EXDEV, EPERM, EMLINK) with a synced copy, blobs/.tmp-<id>.copy renamed to the
  // id. blobs/ is not synced (the caller syncs it once per batch). kExisted, and nothing
  // done, where the blob is there already.
  enum class LinkedAs { kLink, kCopy, kExisted };
  Result<LinkedAs> LinkIn(Dir& from, std::string_view name, std::string_view id);
  // Removes a blob (missing is OK); syncs blobs/.
  Status Remove(std::string_view id);
  // Every valid content id present, sorted.
  Result<std::vector<std::string>> List();
  // Every other entry of blobs/ (name, bytes; a directory counts 0): what a crash left
  // behind. Only safe to remove while no writer runs (the root's lock held).
  Result<std::vector<std::pair<std::string, uint64_t>>> ListLeftovers();
  // Removes a leftover (anything but a valid id; a directory with its contents); syncs blobs/.
  Status RemoveLeftover(std::string_view name);

  Dir& dir() { return *dir_; }

 private:
  explicit BlobStore(std::unique_ptr<Dir> dir) : dir_(std::move(dir)) {}
  Status CheckId(std::string_view id) const;
  std::unique_ptr<Dir> dir_;
};

}  // namespace modelsync::storage
