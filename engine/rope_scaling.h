// Llama 3.1+ rope scaling back from llama.cpp's rope_freqs tensor (engine/CONVERT.md).
//
// llama.cpp's convert_hf_to_gguf.py does not keep config.json's `rope_scaling` of a Llama 3.x
// model (rope_type "llama3": factor, low_freq_factor, high_freq_factor,
// original_max_position_embeddings); it stores what they compute, one factor per rotary
// frequency i < head_dim/2 (wavelength w_i = 2*pi*base^(2i/head_dim)): 1 where w_i is below
// old/high, `factor` above old/low, and 1 / ((1 - s)/factor + s) between, with
// s = (old/w_i - low) / (high - low). mlx-lm (rope_utils.Llama3RoPE) needs the four numbers.
//
// Llama3RopeScaling recovers them: factor is the largest value; low, high and old come from
// the values between (s is linear in 1/w_i: two of them give its slope and intercept, with
// low = 1 as every Llama 3.x has), else Llama 3.1's published (1, 4, 8192). A candidate is
// accepted only when the formula above gives back every value of the tensor (relative
// error <= 1e-5, the tensor being float32); otherwise kInvalidArgument (nothing written).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace modelsync::engine {

struct RopeScaling {
  double factor = 0, low_freq_factor = 0, high_freq_factor = 0;
  uint64_t original_max_position_embeddings = 0;
};

// The factors a rope scaling gives (llama.cpp's formula), one per frequency.
std::vector<double> Llama3RopeFactors(const RopeScaling& r, double base, uint64_t head_dim);

Result<RopeScaling> Llama3RopeScaling(const std::vector<float>& factors, double base,
                                      uint64_t head_dim, const std::string& what);

}  // namespace modelsync::engine
