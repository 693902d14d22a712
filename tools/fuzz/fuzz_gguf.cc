// libFuzzer target: the GGUF header reader (engine/gguf.h).
// Input: a whole GGUF file. Invariants of an accepted file: version 2 or 3; a power-of-two
// alignment; the data section aligned and after the header; every tensor of a known type,
// 1 to 4 non-zero dims, whole blocks along dims[0], its byte size what its type and shape
// make, inside the file, aligned, and no two overlapping. Then the converter's metadata and
// block readers (engine/gguf_tokenizer.h, engine/ggml_dequant.h) run on it without a crash.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/ggml_dequant.h"
#include "engine/gguf.h"
#include "engine/gguf_tokenizer.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace modelsync::engine;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = ParseGgufBytes(bytes, "fuzz");
  if (!r.ok()) {
    FUZZ_CHECK(!r.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(r->version == 2 || r->version == 3);
  FUZZ_CHECK(r->alignment > 0 && (r->alignment & (r->alignment - 1)) == 0);
  FUZZ_CHECK(r->data_offset % r->alignment == 0);
  FUZZ_CHECK(r->metadata.size() == r->metadata_types.size());
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& t : r->tensors) {
    const GgmlType* gt = FindGgmlType(t.type);
    FUZZ_CHECK(gt != nullptr);
    FUZZ_CHECK(!t.dims.empty() && t.dims.size() <= 4);
    for (uint64_t d : t.dims) FUZZ_CHECK(d > 0);
    FUZZ_CHECK(t.dims[0] % gt->block_values == 0);
    FUZZ_CHECK(t.bytes == t.elements() / gt->block_values * gt->block_bytes);
    FUZZ_CHECK(t.offset >= r->data_offset && (t.offset - r->data_offset) % r->alignment == 0);
    FUZZ_CHECK(t.offset <= size && t.bytes <= size - t.offset);
    spans.emplace_back(t.offset, t.offset + t.bytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i - 1].second <= spans[i].first);
  // The converter's readers of what the header holds: the tokenizer rebuilt from the metadata
  // (refused with a message, or JSON), and the first block of every dequantizable tensor.
  auto tok = BuildGgufTokenizer(*r, 0);
  if (tok.ok()) {
    FUZZ_CHECK(nlohmann::json::accept(tok->tokenizer_json));
    FUZZ_CHECK(nlohmann::json::accept(tok->tokenizer_config_json));
  } else {
    FUZZ_CHECK(!tok.status().message().empty());
  }
  float values[256];
  for (const auto& t : r->tensors)
    if (CanDequantize(t.type)) DequantizeBlock(t.type, data + t.offset, values);
  return 0;
}
