// libFuzzer target: the framing of one event-log value (storage/record_format.h
// RecordCodec::Decode: CRC-32C over key || body, codec byte, zstd frame with a declared
// length). A fuzzer mostly bounces off a checksum, so the first byte's low bit asks for the
// CRC to be fixed up before decoding: then the codec, length and zstd paths are reached.
// Input: [flags][seq byte][value]. The key is SeqKey(seq byte).
// Invariants: Decode never reads or allocates past the value or the cap (ASan, and
// -malloc_limit_mb); an accepted payload is within the cap, equals the raw body for codec
// 0, and encodes back to a value that decodes to the same payload; the same value under
// another key fails its checksum.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/crc32c.h"
#include "fuzz_check.h"
#include "storage/record_format.h"

namespace {

using modelsync::fuzz::Input;
namespace storage = modelsync::storage;

// Smaller than the log's caps (64 MiB per event) so that each run stays fast; the checks
// against the cap are the same code.
constexpr size_t kCap = 1 << 20;

void FixCrc(const std::string& key, std::string* value) {
  uint32_t crc =
      modelsync::Crc32cExtend(modelsync::Crc32c(key), value->data() + 4, value->size() - 4);
  for (int i = 0; i < 4; ++i) (*value)[i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static storage::RecordCodec codec;  // reused across runs, as the log reuses one per thread
  Input in(data, size);
  const bool fix_crc = (in.Byte() & 1) != 0;
  const uint64_t seq = in.Byte();
  const std::string key = storage::SeqKey(seq);
  std::string value(in.Rest());
  if (fix_crc && value.size() >= storage::kRecordHeaderBytes) FixCrc(key, &value);

  std::string_view payload;
  modelsync::Status s = codec.Decode(key, value, kCap, &payload);
  if (!s.ok()) {
    FUZZ_CHECK(!s.message().empty());
    return 0;
  }
  FUZZ_CHECK(payload.size() <= kCap);
  if (static_cast<uint8_t>(value[4]) == storage::kCodecRaw) {
    FUZZ_CHECK(payload == std::string_view(value).substr(storage::kRecordHeaderBytes));
  }
  const std::string got(payload);
  std::string again;
  codec.Encode(key, got, &again);
  std::string_view payload2;
  FUZZ_CHECK(codec.Decode(key, again, kCap, &payload2).ok());
  FUZZ_CHECK(payload2 == got);
  std::string_view ignored;
  FUZZ_CHECK(!codec.Decode(storage::SeqKey(seq + 1), again, kCap, &ignored).ok());
  return 0;
}
