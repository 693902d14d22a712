// GGUF -> MLX: a llama.cpp model file becomes a model directory mlx-lm and MLX Swift load
// (issue 19). docs in engine/CONVERT.md.
//
// ConvertGguf writes, into a new directory:
//   model.safetensors (or model-0000i-of-0000N.safetensors + model.safetensors.index.json
//   past options.shard_bytes), config.json, tokenizer.json, tokenizer_config.json.
// Architectures: llama (SmolLM2, Llama 2 and 3.x: rope_freqs becomes rope_scaling, Mistral)
// and qwen2; tensor
// names mapped to the Hugging Face names MLX expects; llama's query/key row permutation
// (llama.cpp's convert_hf_to_gguf.py permute()) undone. Tensor types: Q4_0, Q4_1 and Q8_0
// become MLX affine quantization, group size 32, bit for bit (Q4_1 w = d*q + m: scale d, bias
// m; Q4_0 w = d*(q-8): bias -8d; Q8_0 w = d*q, q signed: stored as q+128, bias -128d; float16
// scales and biases as in the file); F32, F16 and BF16 are kept; Q5_0, Q5_1 and Q2_K..Q6_K
// are dequantized to float16 (engine/ggml_dequant.h), or re-quantized (quantize_bits). Any
// other type (IQ, TQ, MXFP4, ...) is refused, naming the tensor and its type. The tokenizer
// is rebuilt from the metadata (tokenizer.ggml.model "gpt2": byte-level BPE, its split regex
// chosen by tokenizer.ggml.pre as transformers' GGUF loader chooses it; "llama":
// SentencePiece BPE).
//
// Streaming: each output file is written front to back with a bounded buffer (a few MiB),
// whatever the model size (a quantized tensor's weight, scales and biases are three passes
// over its rows). Nothing is written before the whole header has been checked; a refusal (unknown
// architecture, unsupported type, inconsistent shapes) is kInvalidArgument with nothing
// written. out_dir must not exist; on failure after it was made, it is removed.
//
// Thread safety: calling thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"
#include "engine/pull.h"

namespace modelsync::engine {

// Bumped when the converter's output for the same input changes.
inline constexpr char kConverterVersion[] = "modelsync-gguf-mlx/1";

// How much of a tensor the converters (GGUF and PyTorch) read, convert and write at a time:
// the unit of their memory use and of a cancel's latency.
inline constexpr uint64_t kConvertBatchBytes = 1u << 20;

struct ConvertOptions {
  std::string source;                // the .gguf file
  std::string out_dir;               // made by the call; must not exist
  uint64_t shard_bytes = 5ull << 30; // a shard is closed before it would exceed this
  // 4 or 8: every float or dequantized weight matrix (2-D, rows a multiple of 64 wide)
  // becomes MLX affine quantization with group size 64, by mx.quantize's rule applied to its
  // float16 values; 0 = kept as float16 / as stored.
  int quantize_bits = 0;
  // Called after each tensor with output bytes written so far and the total.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Not owned; may be null. When *cancel becomes true the conversion stops within a batch
  // (1 MiB), removes what it wrote and returns kCancelled.
  const std::atomic<bool>* cancel = nullptr;
};

struct ConvertedTensor {
  std::string name;         // the MLX module weight ("model.layers.0.self_attn.q_proj.weight")
  std::string source_name;  // "blk.0.attn_q.weight"
  std::string source_type;  // "Q4_1"
  std::string as;           // "4-bit g32", "8-bit g32", "F32", ...
  bool lossless = true;
};

struct ConvertReport {
  std::string architecture;  // "llama"
  std::string model_type;    // config.json model_type
  std::string tokenizer;     // "gpt2 (smollm)"
  std::vector<std::string> files;  // written, relative to out_dir
  std::map<std::string, std::string> sha256;  // file -> sha256 of the bytes written
  std::vector<ConvertedTensor> tensors;
  uint64_t bytes_out = 0;
  uint64_t lossless = 0;     // tensors converted bit for bit (or kept)
};

Result<ConvertReport> ConvertGguf(const Env& env, const ConvertOptions& options);

// convert FILE.gguf --id MODEL_ID into a root: converts into <root>/.modelsync/blobs/convert.tmp (removed
// first if a crash left it), then adopts that directory as add-local does (model checks,
// blobs, log, layout, marker) with the conversion recorded in RevisionResolved.derived_from
// (source path, its sha256 and size, kConverterVersion); the staging directory is removed.
struct ConvertModelOptions {
  std::string root;
  std::string source;
  std::string model_id;
  std::string repo;  // default local/<model_id>
  int quantize_bits = 0;  // ConvertOptions::quantize_bits
  const std::atomic<bool>* cancel = nullptr;  // ConvertOptions::cancel
  // What the log records as the source (derived_from.source, the endpoint "convert:..."):
  // "" = the file's absolute path; pull --convert gives "<endpoint>/<repo>@<commit>/<file>".
  std::string source_label;
  // The pulled repo the source is in (ConvertPulledOptions; rebuild's re-conversion passes
  // them on): recorded as Derivation.source_repo/commit/file. Empty for a local file.
  std::string source_repo, source_commit, source_file;
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Set (rebuild's re-conversion): the source must still have this sha256, else
  // kIntegrity and nothing is adopted.
  std::string expect_source_sha256;
  // pull --convert, sync, the daemon: when `repo`'s active revision was already converted
  // from source_label by this converter with these options and is marked, nothing is done
  // (ConvertModelResult::up_to_date).
  bool skip_if_converted = false;
};

struct ConvertModelResult {
  ConvertReport report;
  PullSummary summary;
  std::string source;  // the source file, absolute
  std::string source_sha256;
  // False when the source was not read for source_sha256: a GGUF of a pulled revision whose
  // file is the verified blob itself (same inode), whose sha256 is its content id.
  bool source_hashed = true;
  std::string converter;  // kConverterVersion or kTorchConverterVersion
  bool up_to_date = false;  // skip_if_converted, and it was: summary has repo, commit, dirs
};

// The staging directory's name under the root (storage/LAYOUT.md).
inline constexpr char kConvertStaging[] = "convert.tmp";

// A PyTorch source (a directory, .bin or .bin.index.json: LooksLikeTorchSource) goes through
// ConvertTorch, recorded with kTorchConverterVersion and every input file's sha256.
Result<ConvertModelResult> ConvertModel(const Env& env, const ConvertModelOptions& options);

// pull REPO --convert: the .gguf file of a hub repo to fetch. `file` given: it (it must end
// in .gguf). Otherwise the revision is listed (one request, or two) and its only .gguf is
// chosen; several: kInvalidArgument listing them with their sizes ("pass --file NAME");
// none: kInvalidArgument. Offline without `file`: kInvalidArgument asking for --file.
Result<std::string> PickGgufFile(const Env& env, const std::string& repo,
                                 const std::string& revision, const std::string& endpoint,
                                 const std::string& file);

// pull REPO --convert, whatever the repo holds: GGUF (as PickGgufFile: `file` is the .gguf
// to fetch) or, when it has no .gguf but a pytorch_model.bin or its index and no
// .safetensors weights, PyTorch (`file` empty; `include` the globs to fetch: the .bin
// shards, configuration and tokenizer files). A repo with .safetensors weights is refused:
// MLX loads it as it is.
struct ConvertSource {
  bool torch = false;
  std::string file;                  // GGUF: the .gguf path in the repo
  std::vector<std::string> include;  // what to fetch
};
// Offline (HF_HUB_OFFLINE) without `file`, the choice is made from the listing of the
// repo's active revision in root's log; a repo never pulled there is kOffline.
Result<ConvertSource> PickConvertSource(const Env& env, const std::string& root,
                                        const std::string& repo, const std::string& revision,
                                        const std::string& endpoint, const std::string& file);

// The ConvertModel options for what pull --convert (or a tracked convert) just laid out in
// model_dir: its `file` (GGUF) or the whole directory (file "": PyTorch), filed under
// ConvertedRepoFor(repo, file) or "<repo>-mlx", marker model_id ("" = that repo's name),
// source_label "<endpoint>/<repo>@<commit>[/<file>]", skip_if_converted.
ConvertModelOptions ConvertPulledOptions(const std::string& root, const std::string& repo,
                                         const std::string& commit, const std::string& model_dir,
                                         const std::string& file, const std::string& model_id,
                                         const std::string& endpoint, int quantize_bits);

// The repo a converted hub file is filed under: "<org>/<file stem>-mlx"
// ("HuggingFaceTB/SmolLM2-135M-Instruct.Q4_1-mlx" for that repo's
// "SmolLM2-135M-Instruct.Q4_1.gguf"); its default model id is the name part.
std::string ConvertedRepoFor(const std::string& repo, const std::string& file);

}  // namespace modelsync::engine
