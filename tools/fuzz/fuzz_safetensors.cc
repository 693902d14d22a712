// libFuzzer target for the safetensors header parser (engine/safetensors.h).
// Build: cmake -DCMAKE_CXX_COMPILER=clang++ -DMODELSYNC_FUZZ=ON ...; ninja fuzz_safetensors
// Run:   ./build/tools/fuzz/fuzz_safetensors tools/fuzz/corpus/safetensors -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = modelsync::engine::ParseSafetensorsBytes(bytes, "fuzz");
  if (r.ok()) {
    // Invariants of an accepted header: tensors tile the buffer exactly.
    uint64_t at = 0;
    for (const auto& t : r->tensors) {
      if (t.begin != at) __builtin_trap();
      at = t.end;
    }
    if (at != r->data_bytes) __builtin_trap();
  }
  return 0;
}
