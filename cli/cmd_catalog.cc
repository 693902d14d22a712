// modelsync catalog [--json]: the built-in list of curated models (engine/catalog.h).
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/catalog.h"
#include "engine/report_json.h"

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
        EmitJson(engine::CatalogEntryJson(e));
      } else {
        std::printf("%-14s %-45s %5s params  ~%-9s %s\n", e.name.c_str(), e.repo.c_str(),
                    e.parameters.c_str(), FormatBytes(e.approx_bytes).c_str(), e.use.c_str());
      }
    }
  });
}

}  // namespace modelsync::cli
