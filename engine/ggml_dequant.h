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

namespace modelsync::engine {

// MLX's affine quantization of one group (mx.quantize, mlx/backend/cpu/quantized.cpp): the
// group's float16 values w[0..n) (given as floats), bits 4 or 8. Writes n*bits/8 bytes of
// MLX packing (value k of a 32-bit little-endian word at bits k*bits) to packed and the
// float16 scale and bias. The scale runs from the edge of larger magnitude (min or max) so
// that edge is exact: q0 = rint(edge/scale); scale = edge/q0 and bias = edge unless q0 is 0.
void MlxQuantizeGroup(const float* w, int n, int bits, unsigned char* packed, uint16_t* scale,
                      uint16_t* bias);

}  // namespace modelsync::engine
