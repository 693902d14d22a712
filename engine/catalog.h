// The built-in catalog: curated mlx-community models known to load in MLX apps, with a short
// name `pull` accepts instead of a repo id. Sizes are approximate unless marked exact
// (PROTOCOL.md §8 has the observed Qwen2.5-0.5B listing). Immutable; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modelsync::engine {

struct CatalogEntry {
  std::string name;        // short name, e.g. "qwen2.5-0.5b"
  std::string repo;        // e.g. "mlx-community/Qwen2.5-0.5B-Instruct-4bit"
  std::string parameters;  // e.g. "0.5B"
  uint64_t approx_bytes;   // download size of the runtime files
  std::string quantization;
  std::string use;         // what it is good for
};

const std::vector<CatalogEntry>& Catalog();
// The entry's parameter count as a number ("0.5B" -> 500000000, "135M" -> 135000000).
uint64_t ParameterCount(const CatalogEntry& e);
// The entry whose name (case-insensitive) or repo id matches; nullptr when none.
const CatalogEntry* FindCatalogEntry(std::string_view name_or_repo);

}  // namespace modelsync::engine
