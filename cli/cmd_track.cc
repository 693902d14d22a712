// `modelsync track REPO`: add a repo to the watch list (a RepoTracked event).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/daemon.h"
#include "engine/watch.h"

namespace modelsync::cli {

void RegisterTrack(CLI::App& app, CliContext& ctx) {
  struct Opts {
    std::string root, repo, revision = "main", model_id, every = "1h", endpoint;
    std::vector<std::string> include, exclude;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "track", "Add a repo to the watch list that `modelsync sync` and `modelsync daemon` keep current.");
  cmd->add_option("repo", o->repo, "Repo id, e.g. mlx-community/Qwen2.5-0.5B-Instruct-4bit")->required();
  cmd->add_option("--revision", o->revision, "Branch, tag or 40-hex commit")->capture_default_str();
  cmd->add_option("--id", o->model_id, "Marker file name (default: the repo's name)");
  cmd->add_option("--include", o->include, "Only files matching this glob; repeatable");
  cmd->add_option("--exclude", o->exclude, "Skip files matching this glob; repeatable");
  cmd->add_option("--every", o->every, "How often the daemon checks (30s, 10m, 6h; 0 = only on start and sync --now)")
      ->capture_default_str();
  AddRootOption(cmd, &o->root);
  AddEndpointOption(cmd, &o->endpoint);
  cmd->callback([o, &ctx] {
    auto every = ParseDuration(o->every);
    if (!every.ok()) {
      ctx.exit_code = ReportError(every.status().With("--every"));
      return;
    }
    v1::RepoTracked t;
    t.set_repo(o->repo);
    t.set_ref(o->revision);
    t.set_model_id(o->model_id);
    for (const auto& g : o->include) t.add_include(g);
    for (const auto& g : o->exclude) t.add_exclude(g);
    t.set_every_ms(static_cast<uint64_t>(every->count()));
    t.set_endpoint(o->endpoint);
    Status s = engine::Track(o->root, t);
    if (!s.ok()) {
      ctx.exit_code = ReportError(s);
      return;
    }
    // A running daemon picks the change up at once.
    (void)engine::DaemonRequest(o->root, "reload");
    std::printf("tracking %s@%s every %s\n", o->repo.c_str(), o->revision.c_str(), o->every.c_str());
  });
}

}  // namespace modelsync::cli
