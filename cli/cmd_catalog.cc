// modelsync catalog [--json]: the built-in list of curated models (engine/catalog.h).
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/catalog.h"

namespace modelsync::cli {

void RegisterCatalog(CLI::App& app, CliContext& /*ctx*/) {
  auto json_out = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "catalog",
      "List curated MLX models known to work. `modelsync pull NAME` accepts the short name.");
  cmd->add_flag("--json", *json_out, "One JSON object per line on stdout");
  cmd->callback([json_out]() {
    for (const auto& e : engine::Catalog()) {
      if (*json_out) {
        // "0.5B" -> 500000000: numbers are numbers in every --json.
        double n = std::strtod(e.parameters.c_str(), nullptr);
        char unit = e.parameters.empty() ? ' ' : e.parameters.back();
        double scale = unit == 'B' ? 1e9 : unit == 'M' ? 1e6 : unit == 'K' ? 1e3 : 1;
        EmitJson({{"name", e.name},
                  {"repo", e.repo},
                  {"parameters", static_cast<uint64_t>(n * scale + 0.5)},
                  {"bytes_total", e.approx_bytes},
                  {"bytes_total_exact", e.use.find("(exact size)") != std::string::npos},
                  {"quantization", e.quantization},
                  {"use", e.use}});
      } else {
        std::printf("%-14s %-45s %5s params  ~%-9s %s\n", e.name.c_str(), e.repo.c_str(),
                    e.parameters.c_str(), FormatBytes(e.approx_bytes).c_str(), e.use.c_str());
      }
    }
  });
}

}  // namespace modelsync::cli
