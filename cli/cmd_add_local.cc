// modelsync add-local DIR --id MODEL_ID [--repo ORG/NAME]: adopt a model directory the user
// already has (engine/add_local.h): checked, stored as blobs, logged, laid out, marked.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/add_local.h"

namespace modelsync::cli {

void RegisterAddLocal(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<engine::AddLocalOptions>();
  auto json_out = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "add-local",
      "Adopt a model directory you already have: run the model checks, store its files as\n"
      "verified blobs, lay it out under <root>/models/<org>/<name>/ and write the marker.\n"
      "status, verify and rebuild then treat it like a pulled model.");
  cmd->add_option("dir", o->dir, "The model directory (config.json, tokenizer, *.safetensors)")
      ->required();
  cmd->add_option("--id", o->model_id, "Marker file name")->required();
  cmd->add_option("--repo", o->repo, "Repo id to file it under (default local/<id>)");
  cmd->add_flag("--json", *json_out, "One JSON object on stdout");
  AddRootOption(cmd, &o->root);
  cmd->callback([o, json_out, &ctx]() {
    auto r = engine::AddLocal(CliEnv(), *o);
    if (!r.ok()) {
      ctx.exit_code = ReportError(r.status(), *json_out);
      return;
    }
    if (*json_out) {
      EmitJson(engine::AddLocalJson(*r, o->model_id));
    } else {
      std::printf("%s added as %s @ %s\n  %s\n  marker %s\n  %s model, %s, %llu files, %s\n",
                  o->dir.c_str(), r->repo.c_str(), r->commit.substr(0, 12).c_str(),
                  r->model_dir.c_str(), r->marker_path.c_str(), r->model_type.c_str(),
                  r->quantization.c_str(), static_cast<unsigned long long>(r->files),
                  FormatBytes(r->bytes_total).c_str());
    }
  });
}

}  // namespace modelsync::cli
