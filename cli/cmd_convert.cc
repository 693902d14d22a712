// modelsync convert FILE.gguf|DIR --id MODEL_ID [--repo ORG/NAME]: a llama.cpp GGUF file or
// a PyTorch model directory becomes an MLX model in the root (engine/gguf_convert.h,
// engine/torch_convert.h): converted, checked, stored as blobs, logged with what it was made
// from, laid out, marked.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "engine/gguf_convert.h"

namespace modelsync::cli {

namespace {

nlohmann::json ConvertJson(const engine::ConvertModelResult& r, const std::string& source,
                           const std::string& model_id) {
  nlohmann::json j = engine::AddLocalJson(r.summary, model_id);
  j["event"] = "converted";
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : r.report.tensors)
    tensors.push_back({{"name", t.name}, {"source_name", t.source_name},
                       {"source_type", t.source_type}, {"as", t.as}, {"lossless", t.lossless}});
  j["source"] = {{"path", source}, {"sha256", r.source_sha256}, {"hashed", r.source_hashed},
                 {"architecture", r.report.architecture}, {"tokenizer", r.report.tokenizer}};
  j["converter"] = r.converter;
  j["converted"] = tensors;
  j["lossless"] = r.report.lossless;
  return j;
}

void PrintConverted(const engine::ConvertModelResult& r, const std::string& source) {
  const auto& s = r.summary;
  std::printf("%s converted as %s @ %s\n  %s\n  marker %s\n  %s model, %s, %llu files, %s\n",
              source.c_str(), s.repo.c_str(), s.commit.substr(0, 12).c_str(),
              s.model_dir.c_str(), s.marker_path.c_str(), s.model_type.c_str(),
              s.quantization.c_str(), static_cast<unsigned long long>(s.files),
              FormatBytes(s.bytes_total).c_str());
  std::map<std::string, int> kinds;
  for (const auto& t : r.report.tensors) ++kinds[t.source_type + " -> " + t.as];
  std::printf("  %llu of %zu tensors bit for bit:",
              static_cast<unsigned long long>(r.report.lossless), r.report.tensors.size());
  for (const auto& [k, n] : kinds) std::printf(" %d %s;", n, k.c_str());
  std::printf("\n  tokenizer %s; source sha256 %s\n", r.report.tokenizer.c_str(),
              r.source_sha256.c_str());
}

// Converts with a progress bar (on a terminal, without --json); prints the result or the
// error; returns the exit status.
int RunConvert(engine::ConvertModelOptions o, const std::string& shown, bool json) {
  ProgressBar bar("convert", !json && ProgressWanted());
  o.progress = [&bar](uint64_t done, uint64_t total) { bar.Update(done, total, 0, 0); };
  Interrupts interrupts;
  o.cancel = interrupts.flag();
  auto r = engine::ConvertModel(CliEnv(), o);
  bar.Finish();
  if (!r.ok() && r.status().IsCancelled() && interrupts.signal() != 0) {
    if (json) {
      EmitJson({{"event", "interrupted"}, {"signal", interrupts.SignalName()},
                {"exit", interrupts.ExitCode()}});
    } else {
      std::fprintf(stderr, "interrupted (%s): %s\n", interrupts.SignalName().c_str(),
                   r.status().message().c_str());
    }
    return interrupts.ExitCode();
  }
  if (!r.ok()) return ReportError(r.status(), json);
  if (r->up_to_date) {
    if (json) {
      nlohmann::json j = engine::AddLocalJson(r->summary, o.model_id);
      j.update({{"event", "converted"}, {"up_to_date", true}, {"converter", r->converter},
                {"source", {{"path", o.source_label}, {"sha256", r->source_sha256},
                            {"architecture", ""}, {"tokenizer", ""}}},
                {"converted", nlohmann::json::array()}, {"lossless", 0}});
      EmitJson(j);
    } else {
      std::printf("%s: %s @ %s was converted from this commit already\n  marker %s\n",
                  shown.c_str(), r->summary.repo.c_str(), r->summary.commit.substr(0, 12).c_str(),
                  r->summary.marker_path.c_str());
    }
    return 0;
  }
  if (json) {
    EmitJson(ConvertJson(*r, o.source_label.empty() ? r->source : o.source_label,
                         r->summary.marker_path.substr(r->summary.marker_path.rfind('/') + 1)));
  } else {
    PrintConverted(*r, shown);
  }
  return 0;
}

}  // namespace

int ConvertAfterPull(const std::string& root, const std::string& repo, const std::string& commit,
                     const std::string& model_dir, const std::string& file,
                     const std::string& model_id, const std::string& endpoint, int quantize_bits,
                     bool json) {
  // file "": a PyTorch repo, the pulled directory is the source.
  engine::ConvertModelOptions o = engine::ConvertPulledOptions(
      root, repo, commit, model_dir, file, model_id,
      endpoint.empty() ? CliEnv().config.endpoint : endpoint, quantize_bits);
  return RunConvert(o, file.empty() ? repo : repo + "/" + file, json);
}

void RegisterConvert(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<engine::ConvertModelOptions>();
  auto json_out = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a model into an MLX model:\n"
      "  FILE.gguf  a llama.cpp GGUF file (llama or qwen2; Q4_0, Q4_1, Q8_0, F16, BF16, F32\n"
      "             tensors): Q4_0/Q4_1/Q8_0 become MLX 4- and 8-bit quantization with group\n"
      "             size 32 bit for bit, the query/key permutation llama.cpp applied is undone,\n"
      "             config.json and the tokenizer are rebuilt from the file's metadata;\n"
      "  DIR        a Hugging Face PyTorch model directory (pytorch_model.bin, or shards and\n"
      "             pytorch_model.bin.index.json; or name the .bin / index itself): the\n"
      "             checkpoints are read without running their pickles (only what torch.save\n"
      "             writes for a state dict is accepted), tensors kept as they are (F32, F16,\n"
      "             BF16, integer buffers), config.json and tokenizer files copied.\n"
      "The result is checked, stored and laid out under <root>/models/<org>/<name>/ with its\n"
      "marker, like add-local; the log records the source's sha256 (and every file read) and\n"
      "the converter version.");
  cmd->add_option("source", o->source, "The .gguf file, or the PyTorch model directory / .bin / index")->required();
  cmd->add_option("--id", o->model_id, "Marker file name")->required();
  cmd->add_option("--repo", o->repo, "Repo id to file it under (default local/<id>)");
  cmd->add_option("--quantize", o->quantize_bits,
                  "4 or 8: float and dequantized (K-quant) weight matrices (2-D, width a multiple of\n"
                  "64) become MLX affine quantization, group size 64 (mx.quantize's rule on their\n"
                  "float16 values); Q4_0/Q4_1/Q8_0 stay as they are")
      ->check(CLI::IsMember({4, 8}));
  cmd->add_flag("--json", *json_out, "One JSON object on stdout");
  AddRootOption(cmd, &o->root);
  cmd->callback([o, json_out, &ctx]() { ctx.exit_code = RunConvert(*o, o->source, *json_out); });
}

}  // namespace modelsync::cli
