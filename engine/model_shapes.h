// CheckShapes: do the tensors have the shapes config.json gives the architecture? (issue #18)
//
// For the decoder architectures MLX loads by these tensor names (model_type llama, mistral,
// qwen2, qwen3), the shapes follow from config.json: H = hidden_size, I = intermediate_size,
// V = vocab_size, L = num_hidden_layers, heads = num_attention_heads, kv =
// num_key_value_heads (default heads), d = head_dim (default H / heads):
//
//   model.embed_tokens.weight, lm_head.weight           [V, H]
//   model.norm.weight, layers.i.*_layernorm.weight      [H]
//   layers.i.self_attn.q_proj.weight                    [heads*d, H]   (.bias [heads*d])
//   layers.i.self_attn.{k,v}_proj.weight                [kv*d, H]      (.bias [kv*d])
//   layers.i.self_attn.o_proj.weight                    [H, heads*d]
//   layers.i.self_attn.{q,k}_norm.weight                [d]            (qwen3)
//   layers.i.mlp.{gate,up}_proj.weight                  [I, H]
//   layers.i.mlp.down_proj.weight                       [H, I]
//
// A packed weight (U32 with .scales) [out, in*bits/32] must have out rows and a column count
// that some bit width {2,3,4,5,6,8} gives for `in`; its scales [out, in/group_size]. Every
// layer 0..L-1 must be present and none beyond; lm_head.weight must be present when
// tie_word_embeddings is false. Tensors of other names, and other model types, are not
// judged here. MLX loads with strict shape checks, so any of these failing means MLX would
// refuse the weights (verified against mlx-lm in tests/ecosystem).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "engine/safetensors.h"

namespace modelsync::engine {

// The bit widths MLX's affine quantization packs (mlx.core.quantize): 2, 3, 4, 5, 6, 8.
inline bool ValidQuantBits(uint64_t b) { return b == 2 || b == 3 || b == 4 || b == 5 || b == 6 || b == 8; }

// all: every tensor of the model by name (across shards). kPermanent naming the tensor.
Status CheckShapes(const nlohmann::json& config, const std::map<std::string, const TensorInfo*>& all);

}  // namespace modelsync::engine
