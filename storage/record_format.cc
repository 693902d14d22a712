#include "storage/record_format.h"

#include <zstd.h>

#include <cstring>

#include "base/crc32c.h"

namespace modelsync::storage {
namespace {

constexpr int kZstdLevel = 3;

void PutU32(uint32_t v, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint32_t Checksum(std::string_view key, const char* body, size_t n) {
  return Crc32cExtend(Crc32c(key), body, n);
}

}  // namespace

struct RecordCodec::Zstd {
  ZSTD_CCtx* c = nullptr;
  ZSTD_DCtx* d = nullptr;
  ~Zstd() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

void PutSeqKey(uint64_t seq, char out[8]) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(seq & 0xFF);
    seq >>= 8;
  }
}

std::string SeqKey(uint64_t seq) {
  std::string k(8, '\0');
  PutSeqKey(seq, k.data());
  return k;
}

uint64_t ParseSeqKey(const void* key8) {
  const auto* p = static_cast<const unsigned char*>(key8);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

RecordCodec::RecordCodec() : zstd_(std::make_unique<Zstd>()) {}
RecordCodec::~RecordCodec() = default;

void RecordCodec::Encode(std::string_view key, std::string_view payload, std::string* out) {
  out->clear();
  if (payload.size() >= kMinCompressBytes && payload.size() <= UINT32_MAX) {
    if (!zstd_->c) zstd_->c = ZSTD_createCCtx();
    size_t bound = ZSTD_compressBound(payload.size());
    out->resize(kRecordHeaderBytes + 4 + bound);
    size_t n = zstd_->c ? ZSTD_compressCCtx(zstd_->c, out->data() + kRecordHeaderBytes + 4, bound,
                                            payload.data(), payload.size(), kZstdLevel)
                        : 0;
    // Pays = saves at least 1/8 of the payload, counting the 4-byte length.
    if (zstd_->c && !ZSTD_isError(n) && n + 4 <= payload.size() - payload.size() / 8) {
      out->resize(kRecordHeaderBytes + 4 + n);
      (*out)[4] = static_cast<char>(kCodecZstd);
      PutU32(static_cast<uint32_t>(payload.size()), out->data() + kRecordHeaderBytes);
      PutU32(Checksum(key, out->data() + 4, out->size() - 4), out->data());
      return;
    }
    out->clear();
  }
  out->resize(kRecordHeaderBytes + payload.size());
  (*out)[4] = static_cast<char>(kCodecRaw);
  if (!payload.empty())
    std::memcpy(out->data() + kRecordHeaderBytes, payload.data(), payload.size());
  PutU32(Checksum(key, out->data() + 4, out->size() - 4), out->data());
}

Status RecordCodec::Decode(std::string_view key, std::string_view value, size_t max_payload,
                           std::string_view* payload) {
  if (value.size() < kRecordHeaderBytes)
    return Status::Corruption("truncated record (" + std::to_string(value.size()) +
                              " bytes, the header alone is " + std::to_string(kRecordHeaderBytes) +
                              ")");
  uint32_t want = GetU32(value.data());
  uint32_t got = Checksum(key, value.data() + 4, value.size() - 4);
  if (want != got)
    return Status::Corruption(
        "checksum mismatch (flipped bits, a truncated value, or a record stored under the "
        "wrong key)");
  auto codec = static_cast<uint8_t>(value[4]);
  std::string_view body = value.substr(kRecordHeaderBytes);
  if (codec == kCodecRaw) {
    if (body.size() > max_payload)
      return Status::Corruption("payload of " + std::to_string(body.size()) +
                                " bytes is over the cap of " + std::to_string(max_payload));
    *payload = body;
    return Status::Ok();
  }
  if (codec != kCodecZstd) return Status::Corruption("unknown codec " + std::to_string(codec));
  if (body.size() < 4) return Status::Corruption("truncated compressed record");
  uint32_t raw = GetU32(body.data());
  if (raw > max_payload)
    return Status::Corruption("declared length of " + std::to_string(raw) +
                              " bytes is over the cap of " + std::to_string(max_payload));
  std::string_view frame = body.substr(4);
  unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content == ZSTD_CONTENTSIZE_ERROR || content != raw)
    return Status::Corruption("zstd frame does not match the declared length of " +
                              std::to_string(raw) + " bytes");
  if (!zstd_->d) zstd_->d = ZSTD_createDCtx();
  if (!zstd_->d) return Status::IOError("out of memory creating a zstd context");
  scratch_.resize(raw);
  size_t n = ZSTD_decompressDCtx(zstd_->d, scratch_.data(), raw, frame.data(), frame.size());
  if (ZSTD_isError(n) || n != raw)
    return Status::Corruption(std::string("zstd frame does not decode: ") +
                              (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output"));
  *payload = std::string_view(scratch_.data(), raw);
  return Status::Ok();
}

}  // namespace modelsync::storage
