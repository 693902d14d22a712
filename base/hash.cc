#include "base/hash.h"

#include "base/platform.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace modelsync {

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(HashKind kind, uint64_t total_size) : impl_(new Impl), kind_(kind) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, kind == HashKind::kSha256 ? EVP_sha256() : EVP_sha1(), nullptr);
  if (kind == HashKind::kGitBlobSha1) {
    std::string prefix = "blob " + std::to_string(total_size);
    EVP_DigestUpdate(impl_->ctx, prefix.data(), prefix.size() + 1);  // includes the NUL
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(const void* data, size_t n) {
  EVP_DigestUpdate(impl_->ctx, data, n);
  bytes_ += n;
}

std::string Hasher::FinishHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Hasher h(HashKind::kSha256, data.size());
  h.Update(data);
  return h.FinishHex();
}

std::string GitBlobSha1Hex(std::string_view data) {
  Hasher h(HashKind::kGitBlobSha1, data.size());
  h.Update(data);
  return h.FinishHex();
}

std::string HashFileHex(HashKind kind, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return {};
  }
  platform::AdviseSequential(fd);
  Hasher h(kind, static_cast<uint64_t>(st.st_size));
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      ::close(fd);
      return {};
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  if (h.bytes() != static_cast<uint64_t>(st.st_size)) return {};
  return h.FinishHex();
}

bool IsHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace modelsync
