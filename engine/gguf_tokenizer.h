// The tokenizer of a GGUF file, rebuilt from its metadata as tokenizer.json and
// tokenizer_config.json (engine/gguf_convert.h; engine/CONVERT.md says what is written).
#pragma once

#include <string>

#include "base/status.h"
#include "engine/gguf.h"

namespace modelsync::engine {

struct GgufTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  std::string description;  // "gpt2 (smollm)"
  int64_t bos_id = -1, eos_id = -1;
  uint64_t vocab_size = 0;
};

// kInvalidArgument naming the key when the metadata has no tokenizer this build can rebuild.
Result<GgufTokenizerFiles> BuildGgufTokenizer(const GgufInfo& info, uint64_t model_max_length);

}  // namespace modelsync::engine
