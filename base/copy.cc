#include "base/copy.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace modelsync {

void CopyStreaming(char* dst, const char* src, size_t n) {
#if defined(__SSE2__)
  // Up to the first 16-byte boundary of dst with memcpy, then 64 bytes (a cache line) per
  // step with streaming stores, the rest with memcpy.
  const size_t misaligned = reinterpret_cast<uintptr_t>(dst) % 16;
  const size_t head = misaligned == 0 ? 0 : (16 - misaligned < n ? 16 - misaligned : n);
  std::memcpy(dst, src, head);
  dst += head;
  src += head;
  n -= head;
  if (n < 64) {
    std::memcpy(dst, src, n);
    return;
  }
  for (; n >= 64; dst += 64, src += 64, n -= 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 48), d);
  }
  std::memcpy(dst, src, n);
  _mm_sfence();  // streaming stores are weakly ordered: fenced before any later store
#else
  std::memcpy(dst, src, n);
#endif
}

}  // namespace modelsync
