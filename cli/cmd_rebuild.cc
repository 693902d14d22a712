// `modelsync rebuild`: recreate models/ and the markers from the log and the blob store.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/recovery.h"

namespace modelsync::cli {
namespace {

struct RebuildCliOptions {
  std::string root, endpoint;
  bool fetch = false;
  bool json = false;
};

int RunRebuild(const RebuildCliOptions& o) {
  engine::RebuildOptions ro;
  ro.root = o.root;
  ro.fetch = o.fetch;
  ro.endpoint = o.endpoint;
  auto r = engine::Rebuild(CliEnv(), ro);
  if (!r.ok()) return ReportError(r.status(), o.json);
  for (const auto& rr : r->repos) {
    if (o.json) {
      nlohmann::json j = {{"repo", rr.repo},
                          {"commit", rr.commit},
                          {"model_id", rr.model_id},
                          {"files", rr.files},
                          {"dir_rebuilt", rr.dir_rebuilt},
                          {"marker_written", rr.marker_written},
                          {"marker_removed", rr.marker_removed},
                          {"missing", rr.missing},
                          {"fetched", rr.fetched},
                          {"bytes_fetched", rr.bytes_fetched},
                          {"reconverted", rr.reconverted}};
      if (!rr.error.empty()) j["error"] = rr.error;
      std::printf("%s\n", j.dump().c_str());
      continue;
    }
    std::string what;
    if (rr.dir_rebuilt) what += "directory rebuilt; ";
    if (rr.marker_written) what += "marker " + rr.model_id + " written; ";
    if (rr.marker_removed) what += "marker " + rr.model_id + " removed (incomplete); ";
    if (what.empty() && rr.missing.empty()) what = "intact; ";
    if (!what.empty()) what.resize(what.size() - 2);
    std::printf("%s@%s: %s\n", rr.repo.c_str(), rr.commit.substr(0, 12).c_str(), what.c_str());
    if (!rr.missing.empty()) {
      std::printf("  %zu file(s) whose content is gone from the blob store:\n", rr.missing.size());
      for (const auto& p : rr.missing) std::printf("    %s\n", p.c_str());
      if (rr.reconverted)
        std::printf("  converted again from %s (its sha256 as recorded)\n", rr.reconverted_from.c_str());
      else if (rr.fetched)
        std::printf("  re-downloaded (%s)\n", FormatBytes(rr.bytes_fetched).c_str());
      else if (!rr.error.empty())
        std::printf("  re-download failed: %s\n", rr.error.c_str());
      else
        std::printf("  run `modelsync rebuild --fetch` to download exactly those\n");
    }
  }
  for (const auto& m : r->stray_markers_removed) {
    if (o.json)
      std::printf("%s\n", nlohmann::json({{"stray_marker_removed", m}}).dump().c_str());
    else
      std::printf("removed marker %s: the log has no complete model for it\n", m.c_str());
  }
  if (!o.json && r->repos.empty()) std::printf("no models in %s to rebuild\n", o.root.c_str());
  return r->complete() ? 0 : 3;
}

}  // namespace

void RegisterRebuild(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<RebuildCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "rebuild",
      "Recreate every model directory and marker from the log and the blob store (after a\n"
      "model directory or marker was deleted, a stray marker added, or the root copied).\n"
      "No network unless --fetch. Running it twice changes nothing the second time.");
  AddRootOption(cmd, &opts->root);
  AddEndpointOption(cmd, &opts->endpoint);
  cmd->add_flag("--fetch", opts->fetch, "Re-download the files whose content is gone");
  cmd->add_flag("--json", opts->json, "One JSON object per repo per line");
  cmd->footer(
      "Exit status: 0 every model complete, 3 content missing (see --fetch) or the log is\n"
      "damaged, 4 another modelsync holds the root, 1 other.");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunRebuild(*opts); });
}

}  // namespace modelsync::cli
