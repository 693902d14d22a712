// PyTorch checkpoint -> MLX (issue 19; engine/CONVERT.md "PyTorch .bin"): a Hugging Face
// model directory with pytorch_model.bin (or sharded pytorch_model-0000i-of-0000N.bin and
// pytorch_model.bin.index.json) becomes one with model.safetensors (sharded past
// shard_bytes), its config.json (with `quantization` when --quantize) and its tokenizer and
// generation files copied. The checkpoints are read by engine/torch_checkpoint.h (nothing
// executed); tensors keep their names and dtypes (F32, F16, BF16 and the integer buffers),
// views are made contiguous, tied weights (one storage, two names) are written under both
// names. Streaming, like the GGUF converter: bounded memory whatever the model size.
//
// Thread safety: calling thread only.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"
#include "engine/gguf_convert.h"

namespace modelsync::engine {

inline constexpr char kTorchConverterVersion[] = "modelsync-torch-mlx/1";

// What a PyTorch source is made of. `path` may be the model directory, its
// pytorch_model.bin, or its pytorch_model.bin.index.json.
struct TorchSource {
  std::string dir;                   // absolute
  std::string main;                  // pytorch_model.bin or the index, relative to dir
  std::vector<std::string> weights;  // the .bin files, relative to dir
  std::vector<std::string> copied;   // config.json, tokenizer files, ... relative to dir
};
Result<TorchSource> FindTorchSource(const Env& env, const std::string& path);

// True when `path` names a PyTorch source rather than a GGUF file: a directory, a .bin, or
// a .bin.index.json.
bool LooksLikeTorchSource(const Env& env, const std::string& path);

// ConvertOptions::source is the directory (or .bin / index); the report's `architecture`
// is config.json's first architecture, `tokenizer` lists the tokenizer files copied.
Result<ConvertReport> ConvertTorch(const Env& env, const ConvertOptions& options);

}  // namespace modelsync::engine
