// Content hashing: SHA-256 (LFS oids) and git blob SHA-1 (regular files), both
// incremental so bytes are hashed as they land, in order, with no second pass.
//
// Hex digests are lowercase. Not thread-safe; one hasher per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace modelsync {

enum class HashKind { kSha256, kGitBlobSha1 };

class Hasher {
 public:
  // kGitBlobSha1 needs the total size up front: git hashes "blob <size>\0" first.
  Hasher(HashKind kind, uint64_t total_size);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Lowercase hex. The hasher may not be updated afterwards.
  std::string FinishHex();
  uint64_t bytes() const { return bytes_; }
  HashKind kind() const { return kind_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  HashKind kind_;
  uint64_t bytes_ = 0;
};

std::string Sha256Hex(std::string_view data);
std::string GitBlobSha1Hex(std::string_view data);
// Hex digest of the file at path (reads it whole in chunks). Empty string on I/O error.
std::string HashFileHex(HashKind kind, const std::string& path);

bool IsHex(std::string_view s, size_t len);  // exactly len lowercase hex chars

}  // namespace modelsync
