// ZipReader: the entries of a zip archive, read through a callback, for torch.save's format
// (engine/torch_checkpoint.cc): the central directory (ZIP64 included), then where each
// stored entry's bytes are. Nothing is decompressed (torch.save stores its entries), nothing
// is read that the caller does not ask for, and every offset and size is checked against the
// file before it is used: a truncated or inconsistent archive is kInvalidArgument naming the
// entry and the offset.
//
// Thread safety: none (one reader per archive).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "base/status.h"

namespace modelsync::engine {

// Reads n bytes at offset; fewer only at the end of the file.
using ReadAt = std::function<Result<std::string>(uint64_t offset, uint64_t n)>;

// The little-endian unsigned integer of n (<= 8) bytes of b at `at` (the caller checks bounds).
uint64_t LittleEndian(const std::string& b, size_t at, int n);

struct ZipEntry {
  uint64_t local_offset = 0;  // of its local header
  uint64_t size = 0;          // uncompressed
  uint64_t csize = 0;         // compressed (== size when stored)
  uint64_t data_offset = 0;   // of its bytes: set by Locate
  uint16_t method = 0;        // 0 = stored
};

class ZipReader {
 public:
  // At most this many entries (a directory claiming more is refused before it is read).
  static constexpr uint64_t kMaxEntries = 1u << 20;

  // what: how messages name the file ("pytorch_model.bin").
  ZipReader(ReadAt read, uint64_t size, std::string what)
      : read_(std::move(read)), size_(size), what_(std::move(what)) {}

  // Reads the end-of-central-directory record and the central directory. A legacy
  // (pre-zip) torch.save pickle is refused with a message saying so.
  Status Open();

  // Every entry by name (after Open).
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }

  // Where an entry's bytes are (data_offset set): it must exist, be stored uncompressed and
  // lie wholly inside the file.
  Result<ZipEntry> Locate(const std::string& name);

  // kInvalidArgument "<what> <why>".
  Status Bad(const std::string& why) const;

 private:
  ReadAt read_;
  uint64_t size_;
  std::string what_;
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace modelsync::engine
