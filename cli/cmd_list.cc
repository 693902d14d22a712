// `modelsync list`: the watch list.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/watch.h"

namespace modelsync::cli {

void RegisterList(CLI::App& app, CliContext& ctx) {
  auto root = std::make_shared<std::string>();
  auto flags = std::make_shared<OutputFlags>();
  CLI::App* cmd = app.add_subcommand("list", "Show the watch list (modelsync track adds to it).");
  AddRootOption(cmd, root.get());
  AddOutputFlags(cmd, flags.get());
  cmd->callback([root, flags, &ctx] {
    if (Status rs = CheckReadRoot(*root); !rs.ok()) {
      ctx.exit_code = ReportError(rs, flags->json);
      return;
    }
    auto r = engine::ListTracked(CliEnv(), *root);
    if (!r.ok()) {
      ctx.exit_code = ReportError(r.status(), flags->json);
      return;
    }
    for (const auto& t : *r) {
      if (flags->json) {
        nlohmann::json j = {{"repo", t.repo}, {"ref", t.ref}, {"model_id", t.model_id},
                            {"include", t.include},
                            {"exclude", t.exclude},
                            {"every_ms", t.every_ms},
                            {"every", FormatInterval(std::chrono::milliseconds(t.every_ms))},
                            {"endpoint", t.endpoint}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::string every = t.every_ms
                                ? "every " + FormatInterval(std::chrono::milliseconds(t.every_ms))
                                : "at start and on sync --now only";
        std::printf("%s@%s  id %s  %s%s\n", t.repo.c_str(), t.ref.c_str(),
                    t.model_id.c_str(), every.c_str(),
                    !t.include.empty() || !t.exclude.empty() ? "  (filtered)" : "");
      }
    }
    if (r->empty() && !flags->json && !flags->quiet)
      std::printf("nothing is tracked (modelsync track ORG/NAME)\n");
  });
}

}  // namespace modelsync::cli
