// Model checks: is what a pull brings an MLX model that will load? (issue #8)
//
// 1. CheckManifest (before any byte is fetched), on the repo-relative paths that will be on
//    disk (include/exclude applied):
//      - weights = *.safetensors, *.gguf, *.bin (except training_args.bin), *.pt, *.pth;
//      - no weights at all: kind kNoWeights (not a model: synced as plain files, no checks);
//      - weights but no *.safetensors (GGUF-only, PyTorch-only): refused with kInvalidArgument
//        naming what the repo holds, unless any_format (kind kOtherWeights: downloaded, but
//        CheckModelDir will then refuse the marker);
//      - otherwise kSafetensors.
// 2. CheckModelDir (after verification, before the marker), on the files under dir:
//      - config.json parses and names a model_type;
//      - a tokenizer (tokenizer.json, tokenizer.model, *.tiktoken or tiktoken.model) and
//        tokenizer_config.json are present;
//      - every *.safetensors header is valid (safetensors.h);
//      - model.safetensors.index.json, when present, maps every tensor to a shard that exists
//        and holds it, and every tensor of a shard it names appears in it, mapped to that shard;
//      - the quantization of config.json ("quantization" or "quantization_config": bits,
//        group_size, mode, per-layer overrides) agrees with the packed U32 weights;
//      - the tensors have the shapes config.json gives the architecture (model_shapes.h).
//    Errors: kPermanent naming the file and the problem (kIOError when a file cannot be read).
//
// Quantization inference: a tensor "<p>.weight" of dtype U32 with a sibling "<p>.scales" is
// packed: shape [out, in*bits/32] and scales [out, in/group_size], so
// bits = 32 * packed_cols / (scale_cols * group_size), group_size taken from config.json
// (else the first of 64, 32, 128 giving bits in {2,3,4,5,6,8}).
// Parameter estimate: a packed weight counts 32/bits parameters per U32 element; scales and
// biases of packed layers are not counted; every other tensor counts its elements.
//
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace modelsync::engine {

enum class ManifestKind { kSafetensors, kOtherWeights, kNoWeights };

// The note for kNoWeights, shown by pull.
std::string NoWeightsNote(const std::string& repo);

Result<ManifestKind> CheckManifest(const std::string& repo, const std::vector<std::string>& paths,
                                   bool any_format);

struct QuantInfo {
  bool present = false;
  int bits = 0;
  int group_size = 0;
  std::string mode;  // "affine" when config.json omits it
};

struct ModelReport {
  std::string model_type;
  QuantInfo config_quant;        // from config.json
  QuantInfo tensor_quant;        // inferred (bits of the most common packed layer)
  std::map<int, uint64_t> packed_layers_by_bits;
  uint64_t tensors = 0;
  uint64_t parameters = 0;       // estimate, see above
  uint64_t tensor_bytes = 0;     // sum of the data buffers
  std::vector<std::string> safetensors_files;
  std::string QuantSummary() const;  // e.g. "4-bit affine, group size 64" or "none"
};

// paths: the repo-relative files present under dir (e.g. the revision's manifest).
Result<ModelReport> CheckModelDir(const std::string& dir, const std::vector<std::string>& paths);

}  // namespace modelsync::engine
