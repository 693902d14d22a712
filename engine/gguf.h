// GGUF: the header of a llama.cpp model file (metadata and tensor table), read without
// trusting it (issue 19: the converter's first step; `modelsync inspect FILE.gguf`).
//
// Format (ggml/docs/gguf.md; versions 2 and 3, little-endian):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (u32, power of two, default 32) | tensor data
// string = u64 length + bytes (no NUL); value types 0..12: u8 i8 u16 i16 u32 i32 f32 bool
// string array(u32 type, u64 count, values) u64 i64 f64. Tensor offsets are relative to the
// data section and multiples of the alignment; dims[0] is the innermost (fastest) dimension.
//
// Only the header is read (pread through the Env's file system, or from bytes). Every length and count
// is capped before anything is allocated (a key 64 KiB, a string 64 MiB, an array 64 Mi
// entries, 1 Mi tensors, 4 dims, a tensor name 256 bytes, the whole header 1 GiB); a tensor
// must be of a known ggml type, whole blocks along dims[0], aligned, inside the file, and not
// overlap another. A refusal names the file, the byte offset and the field ("at offset 24,
// metadata key #3 'general.name': string length 1099511627776 exceeds the cap of 64 MiB").
// Big-endian GGUF and version 1 are refused as such.
//
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

// A ggml tensor type: its name ("Q4_0"), values per block and bytes per block; nullptr for a
// type this build does not know.
struct GgmlType {
  const char* name;
  uint32_t block_values;
  uint32_t block_bytes;
};
const GgmlType* FindGgmlType(uint32_t type);

struct GgufTensor {
  std::string name;
  uint32_t type = 0;
  std::vector<uint64_t> dims;  // as stored: dims[0] innermost
  uint64_t offset = 0;         // absolute file offset of its data
  uint64_t bytes = 0;
  uint64_t elements() const;
};

struct GgufInfo {
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // absolute start of the tensor data
  uint64_t file_size = 0;
  // key -> value in file order: numbers, bools and strings as JSON scalars, arrays as JSON
  // arrays. u64/i64 stay exact (nlohmann keeps them as integers).
  nlohmann::ordered_json metadata;
  // The value type each key had (0..12), and for arrays the element type.
  std::vector<std::pair<uint32_t, uint32_t>> metadata_types;
  std::vector<GgufTensor> tensors;  // in file order
  std::string architecture;         // general.architecture, "" when absent
};

// Reads up to n bytes at offset into buf; returns how many (0 at end of file).
using GgufReadAt = std::function<Result<size_t>(uint64_t offset, char* buf, size_t n)>;

Result<GgufInfo> ParseGguf(const GgufReadAt& read_at, uint64_t file_size, std::string_view what);
Result<GgufInfo> ParseGgufBytes(std::string_view file, std::string_view what);
// The file at path, read through env.fs (pread of the header only).
Result<GgufInfo> ReadGgufFile(const Env& env, const std::string& path);

// The name of a metadata value type (0..12), "?" otherwise.
const char* GgufValueTypeName(uint32_t type);

}  // namespace modelsync::engine
