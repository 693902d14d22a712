// Partial files: downloads in progress, <root>/.modelsync/partial/<transfer-id>.
//
// A partial file is created at its final size (preallocated), written with pwrite at any
// offset by any number of connections, and made durable with Sync(). Sync() reports exactly
// which ranges became durable, which is what the caller may then record in the log
// (invariant 1: write -> fdatasync -> commit the event).
//
// A failed Sync() means the ranges written since the previous successful Sync() are LOST
// (the kernel may have dropped the dirty pages); the file is then "poisoned": every later
// Write/Sync fails with kIOError until it is reopened, and the caller must treat only the
// ranges it had already recorded as present (never "sync again and trust it").
//
// Names are the transfer id in decimal. Files in partial/ whose names are not decimal ids
// are ignored by List() (and left for gc).
//
// Direct writes: where the file system takes O_DIRECT (storage::File::SetDirectIO), a partial
// file also holds a second handle on the same file with direct I/O on, and WriteDirect() puts
// whole aligned blocks through it, past the page cache (the transfer runner's memory window,
// engine/transfer_state.h). Sync() (fdatasync acts on the file, whichever handle wrote) makes
// them durable as it does ordinary writes, and reports them the same way. ReadInto() reads
// back through the same handle (the hashing thread's read-back of blocks it had no room for).
//
// Thread safety: PartialStore methods are for one thread. A PartialFile's Write() and
// WriteDirect() may be called from several threads at once (disjoint ranges); Sync(), Read()
// and ReadInto() too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/byte_range.h"
#include "base/status.h"
#include "storage/file_system.h"

namespace modelsync::storage {

class PartialFile {
 public:
  PartialFile(uint64_t id, uint64_t size, std::unique_ptr<File> file,
              std::unique_ptr<File> direct = nullptr);

  uint64_t id() const { return id_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return file_->path(); }

  // pwrite of data at offset. kInvalidArgument if it would pass size().
  Status Write(uint64_t offset, std::string_view data);
  // Whether WriteDirect() bypasses the page cache here (else it is Write()).
  bool direct() const { return direct_ != nullptr; }
  // Writes data at offset as Write() does; where direct(), through the direct handle: offset
  // and the address of data must be multiples of platform::kDirectAlign, and so must the
  // length, except for a write that ends the file (its unaligned tail goes through the
  // ordinary handle). kInvalidArgument for a misaligned call.
  Status WriteDirect(uint64_t offset, std::string_view data);
  // fdatasync. On success *durable (if given) receives the ranges written since the last
  // successful Sync (they are durable now). On failure the file is poisoned (see above).
  Status Sync(RangeSet* durable = nullptr);
  // Reads [offset, offset+n) into *out (for re-hashing a committed prefix on resume).
  // kCorruption if the file is shorter than that.
  Status Read(uint64_t offset, size_t n, std::string* out);
  // Reads [offset, offset+n) into buf as Read() does; where direct() and offset is a multiple
  // of platform::kDirectAlign, through the direct handle, past the page cache (bytes written
  // through the page cache and not yet on the disk are written out first, by the kernel).
  // buf must be aligned to kDirectAlign and hold n rounded up to a multiple of it.
  Status ReadInto(uint64_t offset, size_t n, char* buf);
  bool poisoned() const;
  // Performance hints (File::StartWriteback / File::DropCache): start writing back what was
  // written without waiting; drop cached pages that are hashed and durable. Never make
  // anything durable: only Sync() does.
  void StartWriteback(uint64_t offset, uint64_t n) { file_->StartWriteback(offset, n); }
  void DropCache(uint64_t offset, uint64_t n) { file_->DropCache(offset, n); }
  // The ranges written but not yet synced.
  RangeSet Dirty() const;

 private:
  // got (the bytes a read of n at offset returned) or its error; kCorruption if short.
  Status WholeRead(uint64_t offset, size_t n, const Result<size_t>& got) const;

  const uint64_t id_;
  const uint64_t size_;
  std::unique_ptr<File> file_;
  std::unique_ptr<File> direct_;  // the same file with O_DIRECT on; null where refused
  mutable std::mutex mu_;
  RangeSet dirty_;
  std::string poison_;  // non-empty: the failure that poisoned the file
};

class PartialStore {
 public:
  // Opens <root>/.modelsync/partial, creating it (and .modelsync) when missing.
  // With create=false a missing directory is kNotFound and nothing is created (read-only
  // callers: Observe, status).
  static Result<std::unique_ptr<PartialStore>> Open(Dir& root, bool create = true);
  static std::string NameOf(uint64_t transfer_id);

  // A fresh partial file of `size` bytes, preallocated (a leftover of the same name is
  // truncated first: its content was never recorded). The file and the directory entry are
  // synced before returning, so the log may say TransferStarted afterwards.
  // Errors: kNoSpace when the preallocation does not fit, kIOError.
  Result<std::unique_ptr<PartialFile>> Create(uint64_t transfer_id, uint64_t size);
  // Reopens an existing partial file for resume. kNotFound if missing; kCorruption if its
  // size is not `size` (then it must be discarded and the transfer restarted).
  Result<std::unique_ptr<PartialFile>> OpenExisting(uint64_t transfer_id, uint64_t size);
  // Removes the partial file (missing is OK) and syncs the directory.
  Status Remove(uint64_t transfer_id);
  // transfer id -> size on disk, for every well-named regular file.
  Result<std::map<uint64_t, uint64_t>> List();

  Dir& dir() { return *dir_; }

 private:
  explicit PartialStore(std::unique_ptr<Dir> dir) : dir_(std::move(dir)) {}
  // A second handle on partial/name with direct I/O on; null where the file system (or a
  // test's) refuses it.
  std::unique_ptr<File> OpenDirect(const std::string& name);
  std::unique_ptr<Dir> dir_;
};

}  // namespace modelsync::storage
