// libFuzzer target: the PyTorch checkpoint reader (engine/torch_checkpoint.h): the zip's
// central directory (ZIP64 included) and the restricted unpickler.
// Input: a whole .bin file. Invariants of an accepted file: every tensor has a known dtype,
// as many strides as dimensions, and every element it reaches inside its storage's bytes,
// which lie inside the file; a contiguous tensor is one byte range.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/safetensors_writer.h"
#include "engine/torch_checkpoint.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace modelsync::engine;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto r = ParseTorchCheckpoint(bytes, "fuzz");
  if (!r.ok()) {
    FUZZ_CHECK(!r.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(!r->archive.empty());
  for (const auto& t : r->tensors) {
    const uint64_t es = DtypeBytes(t.dtype);
    FUZZ_CHECK(es > 0);
    FUZZ_CHECK(t.shape.size() == t.stride.size());
    FUZZ_CHECK(t.data_offset <= size && t.data_bytes <= size - t.data_offset);
    uint64_t last = t.storage_offset, elems = 1;
    for (size_t k = 0; k < t.shape.size(); ++k) {
      elems *= t.shape[k];
      if (t.shape[k]) last += (t.shape[k] - 1) * t.stride[k];
    }
    if (elems > 0) FUZZ_CHECK((last + 1) * es <= t.data_bytes);
    if (t.contiguous && elems > 0) FUZZ_CHECK((t.storage_offset + elems) * es <= t.data_bytes);
  }
  return 0;
}
