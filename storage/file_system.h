// FileSystem: every file-system side effect the engine performs, behind an interface the
// tests can swap (leveldb's Env is the model; FaultFileSystem is its fault_injection_test).
//
// Shape: a FileSystem opens a root Dir by path (the only path-based call; the root is
// trusted, it comes from the user). Everything below the root goes through Dir handles,
// relative to the directory's fd, one path component at a time, never following a symlink:
//  - every `name` argument is a single component: non-empty, no '/', not "." or "..", no NUL.
//    Anything else is kInvalidArgument before any system call;
//  - files are opened with O_NOFOLLOW, directories with O_NOFOLLOW|O_DIRECTORY, so a symlink
//    planted anywhere under the root makes the call fail (ELOOP / ENOTDIR) instead of
//    writing through it;
//  - OpenDirPath() walks "a/b/c" component by component with the same rules.
//
// Errors: Status naming the full path and the operation, errno as detail(); ENOSPC/EDQUOT
// are kNoSpace, ENOENT kNotFound, everything else kIOError.
//
// Durability contract (what callers must do, and what FaultFileSystem checks):
//  - File data is durable only after File::DataSync() (fdatasync) or File::Sync() succeeds.
//    A failed sync means the bytes written since the previous successful sync are LOST,
//    even if a later sync succeeds (Linux marks the pages clean): never retry and trust it.
//  - A directory entry (create, mkdir, rename, exchange, link) is durable only after the
//    containing directory (both directories, for a rename across directories) is Sync()ed.
//
// Thread safety: a FileSystem may be shared between threads (RealFileSystem has no state;
// FaultFileSystem locks internally). A Dir handle belongs to one thread at a time. A File's
// positioned calls (PWrite, PRead, DataSync, Sync) may run on several threads at once (they
// are pwrite/pread/fdatasync on one descriptor; storage::PartialFile writes disjoint ranges
// from the network thread while the control thread syncs); its other calls belong to one
// thread at a time.
// Handles must not outlive the FileSystem that made them.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace modelsync::storage {

struct FileInfo {
  enum class Type { kFile, kDir, kSymlink, kOther };
  Type type = Type::kOther;
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits
  uint64_t nlink = 0;
  uint64_t dev = 0, ino = 0;
};

// How OpenFile treats an existing / missing file.
enum class OpenMode {
  kRead,             // O_RDONLY; must exist
  kWrite,            // O_RDWR; must exist
  kCreate,           // O_RDWR|O_CREAT; opens an existing file as is
  kCreateExclusive,  // O_RDWR|O_CREAT|O_EXCL; fails (IOError, detail EEXIST) if it exists
  kCreateTruncate,   // O_RDWR|O_CREAT|O_TRUNC
};

class File {
 public:
  virtual ~File() = default;
  // Full path, for messages.
  virtual const std::string& path() const = 0;
  // Writes all of data at offset (short writes and EINTR retried).
  virtual Status PWrite(uint64_t offset, std::string_view data) = 0;
  // Reads up to n bytes at offset; returns the count (short only at end of file).
  virtual Result<size_t> PRead(uint64_t offset, void* buf, size_t n) = 0;
  // fdatasync. See the durability contract above.
  virtual Status DataSync() = 0;
  // fsync (data and all metadata).
  virtual Status Sync() = 0;
  // Makes the file `size` bytes long with the blocks reserved (fallocate; ftruncate where
  // the file system does not support it, which reserves nothing). Never shrinks.
  virtual Status Allocate(uint64_t size) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  virtual Result<FileInfo> Stat() = 0;
  virtual Status Chmod(uint32_t mode) = 0;
  // Performance hints, never part of the durability contract (they make nothing durable):
  // StartWriteback starts writing back the dirty pages of [offset, offset+n) (n = 0: to the
  // end) without waiting (sync_file_range(SYNC_FILE_RANGE_WRITE)); DropCache asks the kernel
  // to drop the clean cached pages of that range (posix_fadvise(POSIX_FADV_DONTNEED)) so a
  // long sequential write reuses a small set of pages. Both are best-effort: the defaults do
  // nothing and errors are ignored.
  virtual void StartWriteback(uint64_t offset, uint64_t n) { (void)offset, (void)n; }
  // Writes bypass the page cache (platform::SetDirectIO, O_DIRECT) while on: PWrite offsets,
  // lengths and buffer addresses must then be multiples of platform::kDirectAlign (4096).
  // An error (not supported here, by this platform or file system) leaves the file as it
  // was; callers fall back to ordinary writes. A test file system does not forward it.
  virtual Status SetDirectIO(bool on) {
    (void)on;
    return Status::InvalidArgument("direct I/O is not supported by this file system");
  }
  virtual void DropCache(uint64_t offset, uint64_t n) { (void)offset, (void)n; }
};

class Dir {
 public:
  virtual ~Dir() = default;
  virtual const std::string& path() const = 0;
  // The underlying descriptor (for implementations that need to pair two Dirs).
  virtual int fd() const = 0;

  // Opens the subdirectory `name` (no symlink followed).
  virtual Result<std::unique_ptr<Dir>> OpenDir(std::string_view name) = 0;
  // mkdir; an existing directory of that name is OK (*created tells which).
  virtual Status MakeDir(std::string_view name, bool* created = nullptr) = 0;
  virtual Result<std::unique_ptr<File>> OpenFile(std::string_view name, OpenMode mode,
                                                 uint32_t perm = 0644) = 0;
  // renameat(this/name, to/to_name); replaces a file at the target.
  virtual Status Rename(std::string_view name, Dir& to, std::string_view to_name) = 0;
  // renameat2(RENAME_EXCHANGE): both must exist. kInvalidArgument with detail EINVAL when
  // the file system cannot exchange (callers may fall back to two renames).
  virtual Status Exchange(std::string_view name, Dir& to, std::string_view to_name) = 0;
  // Hard link this/name -> to/to_name (never follows a symlink at name).
  virtual Status Link(std::string_view name, Dir& to, std::string_view to_name) = 0;
  // A reflink (FICLONE: a new file sharing this/name's data copy-on-write) at to/to_name,
  // created exclusively with mode perm and fsynced. kInvalidArgument with detail EOPNOTSUPP
  // (or the ioctl's errno: EXDEV, EINVAL, ENOTTY) where the file system cannot (ext4, tmpfs;
  // btrfs and XFS can); nothing is left at to_name then. The default: never supported.
  virtual Status Clone(std::string_view name, Dir& to, std::string_view to_name, uint32_t perm) {
    (void)name, (void)to, (void)to_name, (void)perm;
    return Status::InvalidArgument("reflinks are not supported here", EOPNOTSUPP);
  }
  // True when the file system holding this directory makes reflinks (btrfs, XFS): there a
  // model file is a reflinked copy of its blob, not a hard link. Default false.
  virtual bool ClonesFiles() { return false; }
  // symlinkat: this/name becomes a symbolic link holding target (neither checked nor
  // followed). Fails (IOError, detail EEXIST) when name exists.
  virtual Status Symlink(std::string_view target, std::string_view name) = 0;
  // readlinkat: what the symbolic link this/name holds. kInvalidArgument (detail EINVAL)
  // when name is not a symlink.
  virtual Result<std::string> ReadLink(std::string_view name) = 0;
  virtual Status Unlink(std::string_view name) = 0;
  virtual Status RemoveDir(std::string_view name) = 0;
  // Removes name and, if it is a directory, everything below it (symlinks are removed, never
  // followed). A missing name is OK.
  virtual Status RemoveTree(std::string_view name) = 0;
  // lstat of name. kNotFound when missing.
  virtual Result<FileInfo> Stat(std::string_view name) = 0;
  // Entry names except "." and "..", sorted.
  virtual Result<std::vector<std::string>> List() = 0;
  // fsync of the directory: makes entries created/renamed in it durable.
  virtual Status Sync() = 0;
  // syncfs(2) of the file system holding this directory: every file's data and every
  // directory entry on it is durable afterwards (one call instead of an fsync per file, for
  // batches of small files). Implementations that cannot return kInvalidArgument (the
  // default); callers then fall back to per-file syncs. A failure is like a failed fsync of
  // every file written since its last sync (see the durability contract).
  virtual Status SyncFileSystem() {
    return Status::InvalidArgument("syncfs is not supported for " + path());
  }
  // Bytes available to an unprivileged user on this file system (statvfs f_bavail).
  virtual Result<uint64_t> FreeBytes() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens the directory at path (created with parents when `create`). The root path itself
  // is trusted and may traverse symlinks; nothing below it will.
  virtual Result<std::unique_ptr<Dir>> OpenRoot(const std::string& path, bool create) = 0;
  // The absolute, symlink-free form of path (realpath), made first (with parents) when
  // `create`. kNotFound when it does not exist and create is false.
  virtual Result<std::string> ResolvePath(const std::string& path, bool create) = 0;
};

// The process-wide real file system (stateless).
FileSystem* RealFileSystem();

// kInvalidArgument unless `name` is a single safe component (see top of file).
Status CheckComponent(std::string_view name, std::string_view where);

// Opens (and with `create`, makes) the directory `rel` ("a/b/c", validated component by
// component) below `base`. A directory it creates is made durable (its parent is synced; if
// that fails the new directory is removed again and the error returned). `rel` must not be
// empty.
Result<std::unique_ptr<Dir>> OpenDirPath(Dir& base, std::string_view rel, bool create);

// lstat of base/rel ("a/b/c"): the directories on the way are opened as OpenDirPath does
// (never through a symlink: one there is an error), the last component is not followed.
Result<FileInfo> StatPath(Dir& base, std::string_view rel);
// Unlinks the file base/rel (directories on the way as above). kNotFound when missing.
Status UnlinkPath(Dir& base, std::string_view rel);

// Copies the regular file from/name to to/to_name (created exclusively, mode perm), then
// DataSync()s it. Used where a hard link is impossible.
Status CopyFile(Dir& from, std::string_view name, Dir& to, std::string_view to_name, uint32_t perm);

}  // namespace modelsync::storage
