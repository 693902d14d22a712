// The framing of one value in the event log (and of a snapshot). See storage/LOG_FORMAT.md.
//
//   offset 0  u32 LE  crc32c over  key || bytes[4..]   (the key binds a record to its slot)
//   offset 4  u8      codec: 0 = raw, 1 = zstd
//   codec 0:  payload (the rest of the value)
//   codec 1:  u32 LE uncompressed length, then one zstd frame of exactly that many bytes
//
// Encoding compresses only when it pays (payload >= kMinCompressBytes and the frame saves at
// least 1/8). Decoding trusts nothing: every length is checked against the value's size and
// against the caller's cap before any allocation; an error message says what was wrong
// (the caller prefixes which record). Not thread-safe: one RecordCodec per thread (it keeps
// zstd contexts and a scratch buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace modelsync::storage {

inline constexpr size_t kRecordHeaderBytes = 5;  // crc + codec
inline constexpr size_t kMinCompressBytes = 256;
inline constexpr uint8_t kCodecRaw = 0;
inline constexpr uint8_t kCodecZstd = 1;

// The 8-byte big-endian key of sequence number seq.
std::string SeqKey(uint64_t seq);
void PutSeqKey(uint64_t seq, char out[8]);
uint64_t ParseSeqKey(const void* key8);

class RecordCodec {
 public:
  RecordCodec();
  ~RecordCodec();
  RecordCodec(const RecordCodec&) = delete;
  RecordCodec& operator=(const RecordCodec&) = delete;

  // Frames payload for the slot named key into *out (replacing its contents).
  void Encode(std::string_view key, std::string_view payload, std::string* out);

  // Checks and unframes value stored under key. On success *payload views either into value
  // (raw codec) or into this codec's scratch buffer (zstd), valid until the next call.
  // kCorruption (message without the record's name) on a checksum mismatch, a short value,
  // an unknown codec, a length over max_payload or a zstd frame that does not decode to
  // exactly the declared length.
  Status Decode(std::string_view key, std::string_view value, size_t max_payload,
                std::string_view* payload);

 private:
  struct Zstd;
  std::unique_ptr<Zstd> zstd_;
  std::string scratch_;
};

}  // namespace modelsync::storage
