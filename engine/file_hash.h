// Hashing a whole file fast: one pass of large sequential reads (posix_fadvise SEQUENTIAL),
// with a progress counter. Internal to engine (verify).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/hash.h"
#include "base/status.h"

namespace modelsync::engine {

struct FileHashResult {
  std::string hex;
  uint64_t size = 0;
  uint64_t dev = 0, ino = 0;
};

// Opens path without following a symlink (a symlink or non-regular file is
// kInvalidArgument "not a regular file"), hashes all of it. kNotFound when missing, kIOError
// on read errors. *progress (if given) grows by each chunk read.
Result<FileHashResult> HashFileSequential(const std::string& path, HashKind kind,
                                          std::atomic<uint64_t>* progress = nullptr);

// The hash kind of a content id: 64 hex = sha256 (LFS), 40 hex = git blob sha1.
HashKind KindOfContentId(const std::string& content_id);

}  // namespace modelsync::engine
