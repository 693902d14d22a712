#include "engine/ggml_dequant.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>

namespace modelsync::engine {
namespace {

constexpr uint32_t kQ5_0 = 6, kQ5_1 = 7, kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13,
                   kQ6_K = 14;

float H(const unsigned char* p) { return HalfToFloat(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
void ScaleMin(int j, const unsigned char* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void Q5(const unsigned char* b, float* y, bool with_min) {
  const float d = H(b);
  const float m = with_min ? H(b + 2) : 0.0f;
  const unsigned char* qhp = b + (with_min ? 4 : 2);
  const unsigned char* qs = qhp + 4;
  const uint32_t qh = static_cast<uint32_t>(qhp[0]) | (static_cast<uint32_t>(qhp[1]) << 8) |
                      (static_cast<uint32_t>(qhp[2]) << 16) | (static_cast<uint32_t>(qhp[3]) << 24);
  for (int e = 0; e < 32; ++e) {
    const int lo = e < 16 ? qs[e] & 0xF : qs[e - 16] >> 4;
    const int q = lo | static_cast<int>(((qh >> e) & 1) << 4);
    y[e] = with_min ? d * static_cast<float>(q) + m : d * static_cast<float>(q - 16);
  }
}

void Q2K(const unsigned char* b, float* y) {
  const unsigned char* scales = b;
  const unsigned char* qs = b + 16;
  const float d = H(b + 80), dmin = H(b + 82);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, j = (e % 128) / 32, l = e % 32;
    const int q = (qs[half * 32 + l] >> (2 * j)) & 3;
    const unsigned char sc = scales[e / 16];
    const float dl = d * static_cast<float>(sc & 0xF);
    const float ml = dmin * static_cast<float>(sc >> 4);
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

void Q3K(const unsigned char* b, float* y) {
  const unsigned char* hmask = b;
  const unsigned char* qs = b + 32;
  const unsigned char* packed = b + 96;
  const float d = H(b + 108);
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = (packed[i % 8] >> (4 * (i / 8))) & 0x0F;
    const int hi = (packed[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    dl[i] = d * static_cast<float>((lo | (hi << 4)) - 32);
  }
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, j = (e % 128) / 32, l = e % 32;
    const int ql = (qs[half * 32 + l] >> (2 * j)) & 3;
    const int hbit = (hmask[l] >> (e / 32)) & 1;
    y[e] = dl[e / 16] * static_cast<float>(ql - (hbit ? 0 : 4));
  }
}

void Q45K(const unsigned char* b, float* y, bool five) {
  const float d = H(b), dmin = H(b + 2);
  const unsigned char* scales = b + 4;
  const unsigned char* qh = five ? b + 16 : nullptr;
  const unsigned char* qs = five ? b + 48 : b + 16;
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    ScaleMin(s, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      int q = (qs[(s / 2) * 32 + l] >> (4 * (s % 2))) & 0xF;
      if (five) q |= ((qh[l] >> s) & 1) << 4;
      y[s * 32 + l] = d1 * static_cast<float>(q) - m1;
    }
  }
}

void Q6K(const unsigned char* b, float* y) {
  const unsigned char* ql = b;
  const unsigned char* qh = b + 128;
  const auto* scales = reinterpret_cast<const signed char*>(b + 192);
  const float d = H(b + 208);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, within = e % 128, l = e % 32;
    const int lo = (ql[half * 64 + within % 64] >> (4 * (within / 64))) & 0xF;
    const int hi = (qh[half * 32 + l] >> (2 * (within / 32))) & 3;
    const int q = (lo | (hi << 4)) - 32;
    y[e] = d * static_cast<float>(scales[e / 16]) * static_cast<float>(q);
  }
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0) {
    const float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  const uint32_t x =
      exp == 31 ? sign | 0x7F800000u | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  uint32_t mant = x & 0x7FFFFF;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xFF);
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00 | (mant ? 0x200 : 0));
  const int32_t e = exp - 112;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7C00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(h);
}

bool CanDequantize(uint32_t type) {
  switch (type) {
    case kQ5_0: case kQ5_1: case kQ2_K: case kQ3_K: case kQ4_K: case kQ5_K: case kQ6_K:
      return true;
    default:
      return false;
  }
}

void DequantizeBlock(uint32_t type, const unsigned char* block, float* out) {
  switch (type) {
    case kQ5_0: return Q5(block, out, false);
    case kQ5_1: return Q5(block, out, true);
    case kQ2_K: return Q2K(block, out);
    case kQ3_K: return Q3K(block, out);
    case kQ4_K: return Q45K(block, out, false);
    case kQ5_K: return Q45K(block, out, true);
    case kQ6_K: return Q6K(block, out);
    default: return;
  }
}

void MlxQuantizeGroup(const float* w, int n, int bits, unsigned char* packed, uint16_t* scale_out,
                      uint16_t* bias_out) {
  const float n_bins = static_cast<float>((1 << bits) - 1);
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  const bool from_min = std::abs(lo) > std::abs(hi);
  float scale = std::max((hi - lo) / n_bins, 1e-7f);
  if (!from_min) scale = -scale;
  const float edge = from_min ? lo : hi;
  const float q0 = std::rint(edge / scale);
  float bias = 0.0f;
  if (q0 != 0.0f) {
    scale = edge / q0;
    bias = edge;
  }
  const int per_byte = 8 / bits;
  for (int i = 0; i < n * bits / 8; ++i) packed[i] = 0;
  for (int i = 0; i < n; ++i) {
    float q = std::rint((w[i] - bias) / scale);
    q = std::min(std::max(q, 0.0f), n_bins);
    packed[i / per_byte] |= static_cast<unsigned char>(static_cast<unsigned>(q) << ((i % per_byte) * bits));
  }
  *scale_out = FloatToHalf(scale);
  *bias_out = FloatToHalf(bias);
}

}  // namespace modelsync::engine
