// Dequantization of ggml's block formats that have no exact MLX form (engine/gguf_convert.h):
// Q5_0, Q5_1 (32 values a block) and the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (256 values),
// as ggml's dequantize_row_* computes them (ggml/src/ggml-quants.c): float32 products in the
// same order, no fused multiply-add, so the float32 values are ggml's and gguf-py's, and
// their float16 rounding (round to nearest even) is what `gguf.quants.dequantize(...)
// .astype(float16)` gives.
#pragma once

#include <cstdint>

namespace modelsync::engine {

// True when DequantizeBlock handles this ggml type.
bool CanDequantize(uint32_t type);

// Writes the block's values (32 or 256, FindGgmlType(type)->block_values) to out.
void DequantizeBlock(uint32_t type, const unsigned char* block, float* out);

// IEEE binary16 <-> binary32; FloatToHalf rounds to nearest even.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

}  // namespace modelsync::engine
