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
#include "engine/torch_checkpoint.h"

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

// inspect FILE.bin: the tensors of a torch.save checkpoint (engine/torch_checkpoint.h), read
// without running its pickle.
int InspectTorch(const std::string& path, bool json) {
  auto c = engine::ReadTorchCheckpoint(CliEnv(), path);
  if (!c.ok()) return ReportError(c.status(), json);
  if (json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : c->tensors)
      tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"stride", t.stride},
                         {"storage", t.storage_key}, {"storage_offset", t.storage_offset},
                         {"contiguous", t.contiguous}});
    EmitJson({{"torch", path}, {"archive", c->archive}, {"tensor_count", c->tensors.size()},
              {"tensors", tensors}});
    return 0;
  }
  std::map<std::string, uint64_t> types;
  std::map<std::string, int> storages;
  uint64_t params = 0, views = 0;
  for (const auto& t : c->tensors) {
    types[t.dtype]++;
    uint64_t n = 1;
    for (auto d : t.shape) n *= d;
    params += n;
    if (++storages[t.storage_key] > 1 || !t.contiguous || t.storage_offset) ++views;
  }
  std::string ty;
  for (const auto& [name, n] : types) ty += (ty.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  std::printf("%s: torch.save checkpoint (%s/), %zu tensors (~%s parameters) in %zu storages\n"
              "  dtypes: %s\n  views, offsets or shared storages: %llu\n"
              "  MLX cannot load .bin: `modelsync convert DIR --id NAME` makes an MLX model of it\n",
              path.c_str(), c->archive.c_str(), c->tensors.size(), FormatCount(params).c_str(),
              storages.size(), ty.c_str(), static_cast<unsigned long long>(views));
  return 0;
}

bool IsTorchPath(const std::string& arg) {
  return arg.size() > 4 && (arg.compare(arg.size() - 4, 4, ".bin") == 0 ||
                            (arg.size() > 3 && arg.compare(arg.size() - 3, 3, ".pt") == 0) ||
                            (arg.size() > 4 && arg.compare(arg.size() - 4, 4, ".pth") == 0));
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
  cmd->add_option("repo", o->repo, "Repo id, model id or catalog name; or a .gguf file (its header), or a\n"
                  "PyTorch .bin/.pt/.pth checkpoint (its tensors; the pickle is not run)")
      ->required();
  cmd->add_flag("--json", o->json, "One JSON object on stdout");
  AddRootOption(cmd, &o->root);
  cmd->callback([o, &ctx]() {
    if (IsGgufPath(o->repo)) {
      ctx.exit_code = InspectGguf(o->repo, o->json);
      return;
    }
    if (IsTorchPath(o->repo)) {
      ctx.exit_code = InspectTorch(o->repo, o->json);
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
    if (!r->derived.converter.empty())
      std::printf("  converted by %s from %s (sha256 %s, %s%s)\n", r->derived.converter.c_str(),
                  r->derived.source.c_str(), r->derived.source_sha256.substr(0, 16).c_str(),
                  FormatBytes(r->derived.source_size).c_str(),
                  r->derived.inputs ? (", " + std::to_string(r->derived.inputs) + " files read").c_str() : "");
    std::printf("  %zu files, %s\n", r->files.size(), FormatBytes(r->total_bytes).c_str());
    for (const auto& f : r->files)
      std::printf("    %10s  %s\n", FormatBytes(f.size).c_str(), f.path.c_str());
  });
}

}  // namespace modelsync::cli
