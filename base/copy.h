// Copying bytes that are not read again soon by the CPU that copies them.
#pragma once

#include <cstddef>

namespace modelsync {

// Copies n bytes from src to dst (which must not overlap) past the CPU caches where the CPU
// has streaming stores (x86-64: SSE2 non-temporal stores, then a store fence), with memcpy
// elsewhere. For large copies into memory that another thread or a device reads next, such
// as the transfer window's blocks (engine/transfer_state.h): an ordinary copy first reads each
// destination line into the cache (a read for ownership) only to evict it again, which
// measured ~12 % of a cold pull's CPU here; streamed, the copy took ~4 %. The bytes are
// visible to other threads once a lock released after the call is taken.
void CopyStreaming(char* dst, const char* src, size_t n);

}  // namespace modelsync
