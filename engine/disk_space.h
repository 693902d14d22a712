// Free-space checks before a fetch: refuse up front, with the exact numbers, rather than
// fail half-way with ENOSPC.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "storage/file_system.h"

namespace modelsync::engine {

// OK when have >= need; else kNoSpace: "need N bytes (X) under <where>, only M (Y) free:
// free Z more ...".
Status CheckSpace(uint64_t need, uint64_t have, std::string_view where);
// CheckSpace against dir.FreeBytes().
Status CheckFreeSpace(storage::Dir& dir, uint64_t need);

}  // namespace modelsync::engine
