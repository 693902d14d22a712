// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), as used by iSCSI,
// ext4 and leveldb. Table-driven (slicing-by-8), portable, no dependencies.
//
// Crc32c("123456789") == 0xE3069283. Extend() continues a running CRC, so
// Extend(Crc32c(a), b) == Crc32c(a + b). Thread-safe (the tables are constant).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace modelsync {

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }
inline uint32_t Crc32c(std::string_view s) { return Crc32cExtend(0, s.data(), s.size()); }

}  // namespace modelsync
