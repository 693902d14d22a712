// `modelsync ls`: the installed models (id, repo, revision, size, marker), from the log.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/report_json.h"
#include "engine/status.h"

namespace modelsync::cli {

void RegisterLs(CLI::App& app, CliContext& ctx) {
  auto root = std::make_shared<std::string>();
  auto flags = std::make_shared<OutputFlags>();
  CLI::App* cmd = app.add_subcommand(
      "ls", "List the installed models: model id, repo, revision, size, marker; then what the\n"
            "root holds on disk. From the log and the root's top level only (no network).\n"
            "(`list` is the watch list.) Apps can read the same from <root>/.modelsync/models.json.");
  AddRootOption(cmd, root.get());
  AddOutputFlags(cmd, flags.get());
  cmd->footer("Exit status: 0 ok, 2 not a modelsync root, 3 a marker disagrees with the log.");
  cmd->callback([root, flags, &ctx] {
    if (Status rs = CheckReadRoot(*root); !rs.ok()) {
      ctx.exit_code = ReportError(rs, flags->json);
      return;
    }
    auto r = engine::ReadStatus(CliEnv(), *root, "");
    if (!r.ok()) {
      ctx.exit_code = ReportError(r.status(), flags->json);
      return;
    }
    if (flags->json) {
      EmitJson(engine::LsJson(*root, *r));
      ctx.exit_code = r->damaged() ? 3 : 0;
      return;
    }
    uint64_t listed = 0;
    for (const auto& s : r->repos) {
      if (s.active_commit.empty()) continue;  // nothing installed (status shows why)
      ++listed;
      if (!flags->quiet) {
        std::printf("%-32s %-48s %s@%s  %10s  marker %s\n", s.model_id.c_str(), s.repo.c_str(),
                    s.active_commit.substr(0, 12).c_str(), s.active_ref.c_str(),
                    FormatBytes(s.bytes_total).c_str(), s.marker_state.c_str());
      }
    }
    if (!flags->quiet) {
      if (listed == 0) std::printf("no models installed in %s (modelsync pull ORG/NAME)\n", root->c_str());
      std::printf("on disk: %s in verified blobs (model files are links to them), %s in partial "
                  "downloads\n",
                  FormatBytes(r->blob_bytes).c_str(), FormatBytes(r->partial_bytes).c_str());
    }
    ctx.exit_code = r->damaged() ? 3 : 0;
  });
}

}  // namespace modelsync::cli
