// Reads a PyTorch checkpoint (torch.save's zip format, torch >= 1.6) without executing
// anything: the zip's central directory, then `<archive>/data.pkl` through a restricted
// unpickler that knows only what torch.save writes for a state dict (engine/CONVERT.md,
// "PyTorch .bin"):
//   globals  collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _v3,
//            torch._utils._rebuild_parameter(_with_state), torch._tensor._rebuild_from_type_v2,
//            torch.<X>Storage, torch.<dtype>, torch.Tensor, torch.nn.parameter.Parameter
//   pids     ('storage', torch.<X>Storage, key, location, numel) -> `<archive>/data/<key>`
// Any other global is refused at the GLOBAL opcode, naming it (the point of converting here:
// torch.load of an untrusted pickle runs code). Text-protocol opcodes, NEWOBJ, INST, OBJ,
// EXT and the like are refused too. Every count, length, dimension and memo index is capped;
// a tensor's shape and strides must stay inside its storage, and a storage inside the file.
//
// Thread safety: none needed (plain values).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

struct TorchTensor {
  std::string name;            // the state dict key ("model.layers.0.mlp.up_proj.weight")
  std::string dtype;           // safetensors dtype: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL
  std::vector<uint64_t> shape;
  std::vector<uint64_t> stride;  // in elements
  uint64_t storage_offset = 0;   // in elements
  std::string storage_key;       // "0", "1", ...: <archive>/data/<key>
  uint64_t data_offset = 0;      // where that storage's bytes start in the file
  uint64_t data_bytes = 0;       // its size
  bool contiguous = true;        // row-major with no gaps: one byte range
};

struct TorchCheckpoint {
  std::string archive;  // the zip's top folder ("archive", "pytorch_model")
  std::vector<TorchTensor> tensors;  // in the pickle's order
};

// Parses a checkpoint file. kInvalidArgument for anything that is not a torch.save zip of a
// (possibly nested) dict of tensors, with what was found and where.
Result<TorchCheckpoint> ReadTorchCheckpoint(const Env& env, const std::string& path);

// For the fuzzer and tests: the same, from bytes in memory.
Result<TorchCheckpoint> ParseTorchCheckpoint(const std::string& bytes, const std::string& what);

}  // namespace modelsync::engine
