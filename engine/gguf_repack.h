// GGUF's Q4_0, Q4_1 and Q8_0 blocks (32 values each) repacked as MLX affine quantization with
// group size 32, bit for bit (engine/CONVERT.md's table): a row of blocks becomes a row of the
// weight (the packed quants), of the scales (d) and of the biases (Q4_1: m; Q4_0: -8d; Q8_0:
// -128d, exact in float16 or refused). The byte-level kernels of engine/gguf_convert.cc, in
// SSE2 (and NEON for the 4-bit packing) where there is one, a portable loop elsewhere.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

namespace modelsync::engine {

// GGML type ids (ggml.h) of the three block formats.
inline constexpr uint32_t kGgmlQ4_0 = 2, kGgmlQ4_1 = 3, kGgmlQ8_0 = 8;

inline uint16_t Load16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void Store16(unsigned char* p, uint16_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

// -(2^k) * d as float16, exactly; false when it is not representable (overflow).
bool ScaledHalf(uint16_t d, int k, uint16_t* out);

// Repacks one row of `blocks` blocks of `type` (kGgmlQ4_0, kGgmlQ4_1 or kGgmlQ8_0) from `in`
// into the row's weight bytes `w` (blocks * 16 for 4-bit, * 32 for 8-bit), scales `sc` and
// biases `bi` (blocks * 2 each); a null one is not computed. False when a bias has no float16
// value (the scale times -8 or -128 overflows): *bad_block is that block.
bool RepackRow(uint32_t type, const unsigned char* in, uint64_t blocks, unsigned char* w,
               unsigned char* sc, unsigned char* bi, uint64_t* bad_block);

}  // namespace modelsync::engine
