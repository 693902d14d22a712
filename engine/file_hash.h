// Hashing a whole file: one pass of large sequential reads through a storage::File, with a
// progress counter. Internal to engine (verify, the transfer runner, adoption).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/hash.h"
#include "base/status.h"
#include "storage/file_system.h"

namespace modelsync::engine {

struct FileHashResult {
  std::string hex;
  uint64_t size = 0;
  uint64_t dev = 0, ino = 0;
};

// Hashes all of f (opened through a Dir, so never through a symlink) from offset 0 to the size
// Stat() gives. A read error is kIOError (with the errno as detail), never a digest: a caller
// must not take an unreadable file for a wrong one. A file that changes size while read is
// kIOError too. kCancelled as soon as *cancel is true (checked every 4 MiB read).
Result<FileHashResult> HashFile(storage::File& f, HashKind kind,
                                std::atomic<uint64_t>* progress = nullptr,
                                const std::atomic<bool>* cancel = nullptr);

// The hash kind of a content id: 64 hex = sha256 (LFS), 40 hex = git blob sha1.
HashKind KindOfContentId(const std::string& content_id);

}  // namespace modelsync::engine
