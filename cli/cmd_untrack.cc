// `modelsync untrack REPO`: remove a repo from the watch list (its files stay).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "engine/daemon.h"
#include "engine/watch.h"

namespace modelsync::cli {

void RegisterUntrack(CLI::App& app, CliContext& ctx) {
  auto root = std::make_shared<std::string>();
  auto repo = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "untrack", "Remove a repo from the watch list; its files and marker stay where they are.");
  cmd->add_option("repo", *repo, "Repo id (org/name, a URL, a model id or a catalog name)")
      ->required();
  AddRootOption(cmd, root.get());
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "One JSON object on stdout (docs/json/untrack.schema.json)");
  cmd->callback([root, repo, json, &ctx] {
    Status s = ReadRepoArgument(*root, repo.get(), nullptr, false, *json);
    if (s.ok()) s = engine::Untrack(CliEnv(), *root, *repo);
    if (!s.ok()) {
      ctx.exit_code = ReportError(s, *json);
      return;
    }
    (void)engine::DaemonRequest(*root, "reload");
    if (*json) EmitJson({{"repo", *repo}, {"tracked", false}});
    else std::printf("no longer tracking %s\n", repo->c_str());
  });
}

}  // namespace modelsync::cli
