// `modelsync status`: per repo, what is active and how complete it is, from the log alone.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/status.h"

namespace modelsync::cli {
namespace {

struct StatusOptions {
  std::string root;
  std::string repo;
  bool json = false;
};

int RunStatus(const StatusOptions& o) {
  auto r = engine::ReadStatus(o.root, o.repo);
  if (!r.ok()) return ReportError(r.status());
  if (o.json) {
    for (const auto& s : *r) {
      nlohmann::json j = {{"repo", s.repo}, {"model_id", s.model_id}, {"state", s.state},
                          {"active_commit", s.active_commit}, {"active_ref", s.active_ref},
                          {"target_commit", s.target_commit}, {"files_total", s.files_total},
                          {"files_done", s.files_done}, {"bytes_total", s.bytes_total},
                          {"bytes_done", s.bytes_done}, {"marker", s.marker},
                          {"update_available", s.update_available},
                          {"update_bytes", s.update_bytes}, {"tracked", s.tracked}};
      if (!s.last_error.empty()) j["last_error"] = s.last_error;
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  if (r->empty()) {
    std::printf("no models in %s yet (modelsync pull ORG/NAME)\n", o.root.c_str());
    return 0;
  }
  for (const auto& s : *r) {
    std::printf("%s  %s  %s\n", s.repo.c_str(), s.state.c_str(),
                s.active_commit.empty() ? "(nothing active)" : s.active_commit.substr(0, 12).c_str());
    std::printf("  files %llu/%llu, %s of %s", static_cast<unsigned long long>(s.files_done),
                static_cast<unsigned long long>(s.files_total), FormatBytes(s.bytes_done).c_str(),
                FormatBytes(s.bytes_total).c_str());
    if (!s.model_id.empty()) std::printf(", marker %s %s", s.model_id.c_str(), s.marker ? "written" : "absent");
    std::printf("\n");
    if (s.update_available)
      std::printf("  update available: %s (needs %s)\n", s.target_commit.substr(0, 12).c_str(),
                  FormatBytes(s.update_bytes).c_str());
    if (!s.last_error.empty()) std::printf("  last error (%s): %s\n", FormatTimeMs(s.last_error_ms).c_str(), s.last_error.c_str());
  }
  return 0;
}

}  // namespace

void RegisterStatus(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand(
      "status", "Show each model's active revision and completeness, from the log alone\n"
                "(no network, no lock: works while a pull or the daemon runs).");
  cmd->add_option("repo", opts->repo, "Only this repo (org/name)");
  AddRootOption(cmd, &opts->root);
  cmd->add_flag("--json", opts->json, "One JSON object per repo per line");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunStatus(*opts); });
}

}  // namespace modelsync::cli
