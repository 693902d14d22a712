// libFuzzer target: the safetensors header parser (engine/safetensors.h).
// Input: a whole safetensors file (8-byte header length, JSON header, data).
// Invariants of an accepted file: known dtypes; each tensor's byte size matches its shape
// and dtype; sorted by offset, the tensors tile the data buffer exactly.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/safetensors.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace modelsync::engine;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = ParseSafetensorsBytes(bytes, "fuzz");
  if (!r.ok()) {
    FUZZ_CHECK(!r.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(8 + r->header_bytes + r->data_bytes == size);
  uint64_t at = 0;
  for (const auto& t : r->tensors) {
    int bits = SafetensorsDtypeBits(t.dtype);
    FUZZ_CHECK(bits > 0);
    FUZZ_CHECK(t.begin == at && t.begin <= t.end);
    FUZZ_CHECK((t.end - t.begin) * 8 == t.elements() * static_cast<uint64_t>(bits));
    at = t.end;
  }
  FUZZ_CHECK(at == r->data_bytes);
  return 0;
}
