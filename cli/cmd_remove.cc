// `modelsync remove`: stop keeping a model; its blobs are left for `modelsync gc`.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/recovery.h"

namespace modelsync::cli {
namespace {

struct RemoveCliOptions {
  std::string root, repo;
  bool json = false;
};

int RunRemove(RemoveCliOptions o) {
  if (Status s = ReadRepoArgument(o.root, &o.repo, nullptr, false, o.json); !s.ok())
    return ReportError(s, o.json);
  engine::RemoveOptions ro;
  ro.root = o.root;
  ro.repo = o.repo;
  auto r = engine::Remove(CliEnv(), ro);
  if (!r.ok()) return ReportError(r.status(), o.json);
  if (o.json) {
    EmitJson({{"repo", r->repo},
              {"model_dir", r->model_dir},
              {"marker_removed", r->marker},
              {"user_files_kept", r->user_files}});
    return 0;
  }
  if (r->model_dir.empty() && r->marker.empty())
    std::printf("removed %s (it had nothing on disk; its history stays in `modelsync log`)\n",
                r->repo.c_str());
  else
    std::printf("removed %s: %s%s%s\n", r->repo.c_str(),
                r->model_dir.empty() ? "no directory" : r->model_dir.c_str(),
                r->marker.empty() ? "" : " and marker ", r->marker.c_str());
  if (!r->user_files.empty()) {
    std::printf("kept %zu file(s) you added, in %s:\n", r->user_files.size(), r->model_dir.c_str());
    for (const auto& f : r->user_files) std::printf("  %s\n", f.c_str());
  }
  std::printf("its content stays in the blob store until `modelsync gc`\n");
  return 0;
}

}  // namespace

void RegisterRemove(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<RemoveCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "remove", "Untrack a model and delete its directory and marker (blobs stay for gc).");
  cmd->alias("rm");
  cmd->add_option("repo", opts->repo, "The repo (org/name, a URL, a model id or a catalog name)")->required();
  AddRootOption(cmd, &opts->root);
  cmd->add_flag("--json", opts->json, "One JSON object on stdout (docs/json/remove.schema.json)");
  cmd->footer("Exit status: 0 ok, 8 unknown repo, 4 root locked, 3 damaged log, 1 other.");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunRemove(*opts); });
}

}  // namespace modelsync::cli
