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
    bool json = false;
    bool convert = false;
    std::string file;
    int quantize = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "track", "Add a repo to the watch list that `modelsync sync` and `modelsync daemon` keep current.");
  cmd->add_option("repo", o->repo,
                  "Repo id (mlx-community/Qwen2.5-0.5B-Instruct-4bit, org/name@rev, a hub URL, a "
                  "model id or a catalog name)")
      ->required();
  cmd->add_option("--revision", o->revision,
                  "Branch, tag or commit (default: main; tracking a repo again keeps what was "
                  "recorded for every option not given)")
      ->capture_default_str();
  cmd->add_option("--id", o->model_id, "Marker file name (default: the repo's name)");
  cmd->add_option("--include", o->include, "Only files matching this glob; repeatable");
  cmd->add_option("--exclude", o->exclude, "Skip files matching this glob; repeatable");
  cmd->add_flag("--json", o->json, "One JSON object on stdout (docs/json/track.schema.json)");
  cmd->add_flag("--convert", o->convert,
                "A GGUF or PyTorch repo: each sync fetches its weights as `pull --convert` does and\n"
                "converts them into an MLX model (again only when the repo's commit changed); --id\n"
                "then names the converted model");
  cmd->add_option("--file", o->file, "With --convert: the .gguf file, when the repo has several");
  cmd->add_option("--quantize", o->quantize, "With --convert: 4 or 8 (see `modelsync help convert`)")
      ->check(CLI::IsMember({4, 8}));
  cmd->add_option("--every", o->every, "How often the daemon checks (30s, 10m, 6h; 0 = only on start and sync --now)")
      ->capture_default_str();
  AddRootOption(cmd, &o->root);
  AddEndpointOption(cmd, &o->endpoint, /*with_token=*/false);
  cmd->callback([o, cmd, &ctx] {
    if (Status s = ReadRepoArgument(o->root, &o->repo, &o->revision, cmd->count("--revision") > 0,
                                    o->json);
        !s.ok()) {
      ctx.exit_code = ReportError(s, o->json);
      return;
    }
    // Tracked again: what was recorded stays unless this command line says otherwise.
    const bool revision_in_text = o->revision != "main" && cmd->count("--revision") == 0;
    if (auto tracked = engine::ListTracked(CliEnv(), o->root); tracked.ok()) {
      for (const auto& t : *tracked) {
        if (t.repo != o->repo) continue;
        if (cmd->count("--revision") == 0 && !revision_in_text) o->revision = t.ref;
        if (cmd->count("--id") == 0) o->model_id = t.model_id;
        if (cmd->count("--include") == 0 && cmd->count("--exclude") == 0) {
          o->include = t.include;
          o->exclude = t.exclude;
        }
        if (cmd->count("--every") == 0) o->every = FormatInterval(std::chrono::milliseconds(t.every_ms));
        if (cmd->count("--endpoint") == 0) o->endpoint = t.endpoint;
        if (cmd->count("--convert") == 0 && t.convert) {
          o->convert = true;
          if (cmd->count("--file") == 0) o->file = t.convert_file;
          if (cmd->count("--quantize") == 0) o->quantize = static_cast<int>(t.quantize_bits);
          if (cmd->count("--id") == 0) o->model_id = t.converted_id;
        }
      }
    }
    auto every = ParseDuration(o->every);
    if (!every.ok()) {
      ctx.exit_code = ReportError(every.status().With("--every"), o->json);
      return;
    }
    if (!o->convert && (!o->file.empty() || o->quantize)) {
      ctx.exit_code = ReportError(Status::InvalidArgument("--file and --quantize go with --convert"), o->json);
      return;
    }
    if (o->convert && (!o->include.empty() || !o->exclude.empty())) {
      ctx.exit_code = ReportError(Status::InvalidArgument(
          "--convert chooses the files to fetch itself: no --include/--exclude with it"), o->json);
      return;
    }
    engine::Tracking t;
    t.repo = o->repo;
    t.ref = o->revision;
    if (o->convert) {
      t.convert = true;
      t.convert_file = o->file;
      t.quantize_bits = static_cast<uint32_t>(o->quantize);
      t.converted_id = o->model_id;
    } else {
      t.model_id = o->model_id;
    }
    t.include = o->include;
    t.exclude = o->exclude;
    t.every_ms = static_cast<uint64_t>(every->count());
    t.endpoint = o->endpoint;
    Status s = engine::Track(CliEnv(), o->root, t);
    if (!s.ok()) {
      ctx.exit_code = ReportError(s, o->json);
      return;
    }
    // A running daemon picks the change up at once.
    (void)engine::DaemonRequest(o->root, "reload");
    std::string when = *every == std::chrono::milliseconds(0)
                            ? "at start and on sync --now only"
                            : "every " + FormatInterval(*every);
    if (o->json) {
      // What was recorded (the model id the engine chose when none was given).
      if (auto list = engine::ListTracked(CliEnv(), o->root); list.ok())
        for (const auto& rec : *list)
          if (rec.repo == o->repo && !o->convert) o->model_id = rec.model_id;
      EmitJson({{"repo", o->repo},
                {"ref", o->revision},
                {"model_id", o->model_id},
                {"include", o->include},
                {"exclude", o->exclude},
                {"every_ms", every->count()},
                {"every", FormatInterval(*every)},
                {"endpoint", o->endpoint},
                {"tracked", true},
                {"convert", o->convert}});
      return;
    }
    std::printf("tracking %s@%s %s%s\n", o->repo.c_str(), o->revision.c_str(), when.c_str(),
                o->convert ? ", converted into an MLX model on every change" : "");
  });
}

}  // namespace modelsync::cli
