// modelsync inspect REPO [--json]: a local model's revision, files, quantization, tensors,
// parameter estimate and when it was verified (engine/inspect.h). No network.
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/gguf.h"
#include "engine/inspect.h"
#include "engine/report_json.h"

namespace modelsync::cli {
namespace {

std::string IsoTime(int64_t ms) { return ms > 0 ? FormatTimeMs(ms) : ""; }

// A repo id never ends in ".gguf"; a GGUF file does.
bool IsGgufPath(const std::string& arg) {
  return arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".gguf") == 0;
}

// inspect FILE.gguf: the header of a llama.cpp model file (engine/gguf.h), no root involved.
int InspectGguf(const std::string& path, bool json) {
  auto g = engine::ReadGgufFile(CliEnv(), path);
  if (!g.ok()) return ReportError(g.status(), json);
  if (json) {
    EmitJson(engine::GgufJson(path, *g));
    return 0;
  }
  std::map<std::string, uint64_t> types;
  uint64_t params = 0, bytes = 0;
  for (const auto& t : g->tensors) {
    const engine::GgmlType* gt = engine::FindGgmlType(t.type);
    types[gt ? gt->name : "?"]++;
    params += t.elements();
    bytes += t.bytes;
  }
  auto str = [&](const char* key) {
    auto it = g->metadata.find(key);
    return it != g->metadata.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::printf("%s: GGUF v%u, %s, %zu tensors (%s of data, ~%s parameters), %zu metadata keys\n",
              path.c_str(), g->version, g->architecture.empty() ? "no architecture" : g->architecture.c_str(),
              g->tensors.size(), FormatBytes(bytes).c_str(), FormatCount(params).c_str(),
              g->metadata.size());
  if (!str("general.name").empty()) std::printf("  name: %s\n", str("general.name").c_str());
  std::string t;
  for (const auto& [name, n] : types) t += (t.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  std::printf("  tensor types: %s\n", t.c_str());
  if (!str("tokenizer.ggml.model").empty()) {
    auto tok = g->metadata.find("tokenizer.ggml.tokens");
    auto merges = g->metadata.find("tokenizer.ggml.merges");
    std::printf("  tokenizer: %s, %zu tokens, %zu merges, chat template %s\n",
                str("tokenizer.ggml.model").c_str(), tok != g->metadata.end() ? tok->size() : 0,
                merges != g->metadata.end() ? merges->size() : 0,
                str("tokenizer.chat_template").empty() ? "none" : "present");
  }
  std::printf("  MLX cannot load GGUF: look for an mlx-community conversion of this model\n");
  return 0;
}

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
  cmd->add_option("repo", o->repo, "Repo id, model id or catalog name; or a .gguf file (its header)")
      ->required();
  cmd->add_flag("--json", o->json, "One JSON object on stdout");
  AddRootOption(cmd, &o->root);
  cmd->callback([o, &ctx]() {
    if (IsGgufPath(o->repo)) {
      ctx.exit_code = InspectGguf(o->repo, o->json);
      return;
    }
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
