#include "engine/gguf_repack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "engine/ggml_dequant.h"

namespace modelsync::engine {
namespace {

// GGUF's 4-bit block: value i < 16 is the low nibble of qs[i], value i + 16 its high one.
// MLX packs value e at bits 4(e % 8) of little-endian word e / 8: byte k = v[2k] | v[2k+1] << 4.
// As 16-bit lanes w = v[2k] | v[2k+1] << 8: byte k = (w & 0x0F) | (w >> 4 & 0xF0), byte
// 8 + k = (w >> 4 & 0x0F) | (w >> 8 & 0xF0).
void Pack4(const unsigned char* qs, unsigned char* out) {
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo4 = _mm_set1_epi16(0x000F), hi4 = _mm_set1_epi16(0x00F0);
  const __m128i v4 = _mm_srli_epi16(v, 4);
  const __m128i a = _mm_or_si128(_mm_and_si128(v, lo4), _mm_and_si128(v4, hi4));
  const __m128i b = _mm_or_si128(_mm_and_si128(v4, lo4), _mm_and_si128(_mm_srli_epi16(v, 8), hi4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(a, b));
#elif defined(__ARM_NEON)
  const uint8x8x2_t v = vld2_u8(qs);  // even bytes, odd bytes
  const uint8x8_t lo4 = vdup_n_u8(0x0F), hi4 = vdup_n_u8(0xF0);
  vst1_u8(out, vorr_u8(vand_u8(v.val[0], lo4), vshl_n_u8(v.val[1], 4)));
  vst1_u8(out + 8, vorr_u8(vshr_n_u8(v.val[0], 4), vand_u8(v.val[1], hi4)));
#else
  for (int k = 0; k < 8; ++k)
    out[k] = static_cast<unsigned char>((qs[2 * k] & 0x0F) | (qs[2 * k + 1] << 4));
  for (int k = 0; k < 8; ++k)
    out[8 + k] = static_cast<unsigned char>((qs[2 * k] >> 4) | (qs[2 * k + 1] & 0xF0));
#endif
}

// Scales and biases of a row's blocks, 8 at a time (SSE2): d (and Q4_1's m) gathered from
// 8 blocks; -(2^k) d by adding k to the exponent, as ScaledHalf does, when all 8 are normal
// and do not overflow. From block b on; returns the first block not done, where the caller
// takes a group of 8 one by one.
uint64_t ScalesAndBiases8(uint32_t t, int k, const unsigned char* in, uint64_t bb, uint64_t b,
                          uint64_t blocks, unsigned char* sc, unsigned char* bi) {
#if defined(__SSE2__)
  auto gather = [&](uint64_t at) {
    __m128i v = _mm_setzero_si128();
    v = _mm_insert_epi16(v, Load16(in + (b + 0) * bb + at), 0);
    v = _mm_insert_epi16(v, Load16(in + (b + 1) * bb + at), 1);
    v = _mm_insert_epi16(v, Load16(in + (b + 2) * bb + at), 2);
    v = _mm_insert_epi16(v, Load16(in + (b + 3) * bb + at), 3);
    v = _mm_insert_epi16(v, Load16(in + (b + 4) * bb + at), 4);
    v = _mm_insert_epi16(v, Load16(in + (b + 5) * bb + at), 5);
    v = _mm_insert_epi16(v, Load16(in + (b + 6) * bb + at), 6);
    v = _mm_insert_epi16(v, Load16(in + (b + 7) * bb + at), 7);
    return v;
  };
  for (; b + 8 <= blocks; b += 8) {
    const __m128i d = gather(0);
    if (bi) {
      __m128i bias;
      if (t == kGgmlQ4_1) {
        bias = gather(2);
      } else {
        const __m128i e = _mm_and_si128(_mm_srli_epi16(d, 10), _mm_set1_epi16(0x1F));
        const __m128i ok = _mm_and_si128(_mm_cmpgt_epi16(e, _mm_setzero_si128()),
                                         _mm_cmplt_epi16(e, _mm_set1_epi16(static_cast<short>(31 - k))));
        if (_mm_movemask_epi8(ok) != 0xFFFF) break;
        bias = _mm_add_epi16(_mm_xor_si128(d, _mm_set1_epi16(static_cast<short>(0x8000))),
                             _mm_set1_epi16(static_cast<short>(k << 10)));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(bi + b * 2), bias);
    }
    if (sc) _mm_storeu_si128(reinterpret_cast<__m128i*>(sc + b * 2), d);
  }
#else
  (void)t, (void)k, (void)in, (void)bb, (void)blocks, (void)sc, (void)bi;
#endif
  return b;
}

}  // namespace

// A normal d only moves its exponent; a subnormal one (or zero) goes through float.
bool ScaledHalf(uint16_t d, int k, uint16_t* out) {
  const uint16_t exp = (d >> 10) & 0x1F;
  if (exp != 0 && exp != 31) {
    if (exp + k > 30) return false;
    *out = static_cast<uint16_t>(((d ^ 0x8000) & 0x83FF) | ((exp + k) << 10));
    return true;
  }
  const float f = HalfToFloat(d) * -static_cast<float>(1 << k);
  *out = FloatToHalf(f);
  return std::isnan(f) || HalfToFloat(*out) == f;
}

bool RepackRow(uint32_t t, const unsigned char* in, uint64_t blocks, unsigned char* w,
               unsigned char* sc, unsigned char* bi, uint64_t* bad_block) {
  const uint64_t bb = t == kGgmlQ8_0 ? 34 : t == kGgmlQ4_1 ? 20 : 18;  // bytes per block
  if (w) {
    if (t == kGgmlQ8_0) {  // q + 128
      for (uint64_t b = 0; b < blocks; ++b)
        for (int k = 0; k < 32; ++k) w[b * 32 + k] = in[b * bb + 2 + k] ^ 0x80;
    } else {
      const int qs = t == kGgmlQ4_1 ? 4 : 2;  // where a block's quants start
      for (uint64_t b = 0; b < blocks; ++b) Pack4(in + b * bb + qs, w + b * 16);
    }
  }
  if (!sc && !bi) return true;
  const int k = t == kGgmlQ4_0 ? 3 : 7;  // bias = -(2^k) d
  for (uint64_t b = 0; b < blocks;) {
    b = ScalesAndBiases8(t, k, in, bb, b, blocks, sc, bi);
    // One by one: a group of 8 with a zero, subnormal or overflowing scale, or the tail.
    for (const uint64_t end = std::min(blocks, b + 8); b < end; ++b) {
      const unsigned char* blk = in + b * bb;
      if (sc) std::memcpy(sc + b * 2, blk, 2);
      if (!bi) continue;
      uint16_t bias;
      if (t == kGgmlQ4_1) {
        bias = Load16(blk + 2);
      } else if (!ScaledHalf(Load16(blk), k, &bias)) {
        *bad_block = b;
        return false;
      }
      Store16(bi + b * 2, bias);
    }
  }
  return true;
}

}  // namespace modelsync::engine
