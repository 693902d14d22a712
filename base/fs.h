// Small file-system helpers with the fsync/rename discipline spelled out.
//
// All functions return Status with the path in the message and errno as detail;
// ENOSPC/EDQUOT map to kNoSpace. No function follows a symlink it creates.
// Thread-safe (they share no state).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace modelsync {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes all of data at the file's offset (retrying short writes and EINTR).
Status WriteAll(int fd, std::string_view data, std::string_view path);
// pwrite of all of data at offset.
Status PWriteAll(int fd, const void* data, size_t n, uint64_t offset, std::string_view path);
// Creates dir and its parents (mode 0755). Existing directories are fine. Each directory it
// creates is durable when it returns (its parent fsynced); when that fsync fails the new
// directory is removed again, so that a later call creates and syncs it (an existing one
// is taken as durable).
Status MakeDirs(const std::string& dir);
// fsync of a directory, so a rename or create inside it is durable.
Status FsyncDir(const std::string& dir);
// Reads a whole file. kNotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path);
// Writes path atomically: tmp file in the same directory, fsync, rename, fsync dir.
Status WriteFileAtomic(const std::string& path, std::string_view data);
// Directory part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string DirName(const std::string& path);
// Joins with exactly one '/'.
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace modelsync
