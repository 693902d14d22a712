#include "engine/catalog.h"

#include <cstdlib>

#include <algorithm>
#include <cctype>

#include "base/strings.h"

namespace modelsync::engine {

const std::vector<CatalogEntry>& Catalog() {
  static const std::vector<CatalogEntry> kCatalog = {
      {"smollm2-135m", "mlx-community/SmolLM2-135M-Instruct-4bit", "135M", 76ull << 20,
       "4-bit affine, group size 64",
       "tiny instruct chat model: smoke tests, very low memory devices"},
      {"qwen2.5-0.5b", "mlx-community/Qwen2.5-0.5B-Instruct-4bit", "0.5B", 289598797ull,
       "4-bit affine, group size 64",
       "small multilingual instruct chat model; fast on any Apple silicon (exact size)"},
      {"llama-3.2-1b", "mlx-community/Llama-3.2-1B-Instruct-4bit", "1.2B", 712ull << 20,
       "4-bit affine, group size 64",
       "Meta Llama 3.2 1B instruct: general chat and summarization with a 128k context"},
  };
  return kCatalog;
}

const CatalogEntry* FindCatalogEntry(std::string_view s) {
  const std::string want = AsciiLower(s);
  for (const auto& e : Catalog())
    if (AsciiLower(e.name) == want || AsciiLower(e.repo) == want) return &e;
  return nullptr;
}

uint64_t ParameterCount(const CatalogEntry& e) {
  double n = std::strtod(e.parameters.c_str(), nullptr);
  char unit = e.parameters.empty() ? ' ' : e.parameters.back();
  double scale = unit == 'B' ? 1e9 : unit == 'M' ? 1e6 : unit == 'K' ? 1e3 : 1;
  return static_cast<uint64_t>(n * scale + 0.5);
}

}  // namespace modelsync::engine
