// modelsync inspect REPO [--json]: a local model's revision, files, quantization, tensors,
// parameter estimate and when it was verified (engine/inspect.h). No network.
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/inspect.h"

namespace modelsync::cli {
namespace {

std::string IsoTime(int64_t ms) { return ms > 0 ? FormatTimeMs(ms) : ""; }

}  // namespace

void RegisterInspect(CLI::App& app, CliContext& ctx) {
  struct Opts {
    std::string root, repo;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show what a pulled model is: revision, files, quantization, tensors,\n"
                 "parameter estimate, size and when it was verified (local, no network).");
  cmd->add_option("repo", o->repo, "Repo id, model id or catalog name")->required();
  cmd->add_flag("--json", o->json, "One JSON object on stdout");
  AddRootOption(cmd, &o->root);
  cmd->callback([o, &ctx]() {
    auto r = engine::Inspect(CliEnv(), o->root, o->repo);
    if (!r.ok()) {
      ctx.exit_code = ReportError(r.status(), o->json);
      return;
    }
    const auto& m = r->model;
    if (o->json) {
      EmitJson(engine::InspectJson(o->root, *r));
      return;
    }
    std::printf("%s @ %s (%s)\n  %s\n  marker %s; verified %s\n", r->repo.c_str(),
                r->commit.c_str(), r->ref.c_str(), r->model_dir.c_str(),
                r->marker ? "written" : "absent", IsoTime(r->verified_ms).c_str());
    if (!r->is_model) std::printf("  not a model (no weight files)\n");
    else if (!r->check_error.empty()) std::printf("  model check FAILED: %s\n", r->check_error.c_str());
    else
      std::printf("  %s, quantization %s, %llu tensors, ~%s parameters\n", m.model_type.c_str(),
                  m.QuantSummary().c_str(), static_cast<unsigned long long>(m.tensors),
                  FormatCount(m.parameters).c_str());
    std::printf("  %zu files, %s\n", r->files.size(), FormatBytes(r->total_bytes).c_str());
    for (const auto& f : r->files)
      std::printf("    %10s  %s\n", FormatBytes(f.size).c_str(), f.path.c_str());
  });
}

}  // namespace modelsync::cli
