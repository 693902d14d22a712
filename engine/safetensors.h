// Safetensors header validation (format: PROTOCOL.md §8, "Safetensors (ST-FMT)").
//
//   [8 bytes: N, u64 little-endian][N bytes: UTF-8 JSON object, may end in spaces][data]
//
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data buffer, end exclusive) plus an optional "__metadata__" string map.
// A header is accepted only when:
//   - N <= kMaxSafetensorsHeader and 8 + N <= file size; the header starts with '{' and is
//     valid UTF-8 JSON (an object);
//   - every dtype is one of the 22 names of PROTOCOL §8; every shape is a list of
//     non-negative integers whose product does not overflow;
//   - end - begin == elements * bits / 8 (sub-byte dtypes F4, F6_*: the bit count must be a
//     whole number of bytes, else refused as misaligned);
//   - sorted by offset, the tensors cover the data buffer [0, file size - 8 - N) exactly:
//     no gap, no overlap, nothing past its end.
// Reading a file reads the 8-byte prefix and the header only (pread): a multi-gigabyte file
// is never mapped or read whole.
//
// Errors: kPermanent with a message naming the file ("what"), the tensor and the problem;
// kIOError / kNotFound when the file cannot be read. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace modelsync::engine {

// Header size cap (the Python reference refuses over 25 MB; real headers are < 1 MB).
inline constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;  // within the data buffer, end exclusive
  uint64_t elements() const;    // product of shape (1 for a scalar)
};

struct SafetensorsInfo {
  uint64_t header_bytes = 0;  // N
  uint64_t data_bytes = 0;    // size of the data buffer
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> tensors;  // sorted by data offset
};

// Bits per element of a safetensors dtype name; 0 when the name is unknown.
int SafetensorsDtypeBits(std::string_view dtype);

// Validates a header (the N JSON bytes) for a data buffer of data_bytes bytes.
Result<SafetensorsInfo> ParseSafetensorsHeader(std::string_view header, uint64_t data_bytes,
                                               std::string_view what);
// Validates a whole file held in memory (prefix + header + data); for tests and the fuzzer.
Result<SafetensorsInfo> ParseSafetensorsBytes(std::string_view file, std::string_view what);
// Validates the file at path, reading only its first 8 + N bytes.
Result<SafetensorsInfo> ReadSafetensorsFile(const std::string& path, std::string_view what);

}  // namespace modelsync::engine
