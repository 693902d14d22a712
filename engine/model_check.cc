#include "engine/model_check.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fs.h"
#include "base/strings.h"
#include "engine/model_shapes.h"
#include "engine/safetensors.h"

namespace modelsync::engine {
namespace {

using nlohmann::json;

bool IsTorch(const std::string& p) {
  return (p.ends_with(".bin") && SplitLeaf(p).second != "training_args.bin") || p.ends_with(".pt") ||
         p.ends_with(".pth");
}

std::string Join(const std::vector<std::string>& v, size_t max = 3) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max) out += ", ... (" + std::to_string(v.size()) + " files)";
  return out;
}

Status Fail(const std::string& file, const std::string& problem) {
  return Status::Permanent(file + ": " + problem);
}

Result<json> ReadJson(const std::string& dir, const std::string& rel) {
  auto text = ReadFile(JoinPath(dir, rel));
  if (!text.ok()) return text.status();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Fail(rel, "is not valid JSON");
  return j;
}

QuantInfo ParseQuant(const json& q) {
  QuantInfo qi;
  if (!q.is_object()) return qi;
  qi.present = true;
  if (auto b = q.find("bits"); b != q.end() && b->is_number_integer()) qi.bits = b->get<int>();
  if (auto g = q.find("group_size"); g != q.end() && g->is_number_integer())
    qi.group_size = g->get<int>();
  qi.mode = "affine";
  if (auto m = q.find("mode"); m != q.end() && m->is_string()) qi.mode = m->get<std::string>();
  return qi;
}

// bits for a packed layer, 0 if none fits.
int InferBits(uint64_t packed_cols, uint64_t scale_cols, int group_size) {
  std::vector<uint64_t> groups;
  if (group_size > 0) groups.push_back(static_cast<uint64_t>(group_size));
  else groups = {64, 32, 128};
  for (uint64_t g : groups) {
    uint64_t in = scale_cols * g;
    if (in == 0 || (packed_cols * 32) % in != 0) continue;
    uint64_t bits = packed_cols * 32 / in;
    if (ValidQuantBits(bits)) return static_cast<int>(bits);
  }
  return 0;
}

Status CheckConfig(const std::string& dir, const std::set<std::string>& root_files,
                   ModelReport* rep, json* config) {
  if (!root_files.count("config.json"))
    return Fail("config.json", "missing: MLX needs it to know the architecture");
  MS_ASSIGN_OR_RETURN(*config, ReadJson(dir, "config.json"));
  if (!config->is_object()) return Fail("config.json", "is not a JSON object");
  auto mt = config->find("model_type");
  if (mt == config->end() || !mt->is_string() || mt->get<std::string>().empty())
    return Fail("config.json", "names no model_type: MLX cannot pick an architecture");
  rep->model_type = mt->get<std::string>();
  for (const char* key : {"quantization", "quantization_config"}) {
    if (auto q = config->find(key); q != config->end() && q->is_object()) {
      rep->config_quant = ParseQuant(*q);
      break;
    }
  }
  return Status::Ok();
}

Status CheckTokenizer(const std::set<std::string>& root_files) {
  bool tok = root_files.count("tokenizer.json") || root_files.count("tokenizer.model") ||
             root_files.count("tiktoken.model") ||
             std::any_of(root_files.begin(), root_files.end(),
                         [](const std::string& f) { return f.ends_with(".tiktoken"); });
  if (!tok)
    return Fail("tokenizer.json", "missing (nor tokenizer.model, *.tiktoken or tiktoken.model): "
                                  "the model has no tokenizer; pull a repo that ships one");
  if (!root_files.count("tokenizer_config.json"))
    return Fail("tokenizer_config.json", "missing: the tokenizer cannot be configured");
  return Status::Ok();
}

Status CheckIndex(const std::string& dir, const std::set<std::string>& paths,
                  const std::map<std::string, SafetensorsInfo>& shards) {
  const std::string idx = "model.safetensors.index.json";
  MS_ASSIGN_OR_RETURN(json j, ReadJson(dir, idx));
  auto wm = j.is_object() ? j.find("weight_map") : j.end();
  if (!j.is_object() || wm == j.end() || !wm->is_object())
    return Fail(idx, "has no weight_map object");
  std::map<std::string, std::set<std::string>> shard_names;
  for (const auto& [file, info] : shards)
    for (const auto& t : info.tensors) shard_names[file].insert(t.name);
  std::set<std::string> named_shards;
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string()) return Fail(idx, "maps tensor '" + tensor + "' to a non-string");
    std::string s = shard.get<std::string>();
    if (!paths.count(s) || !shards.count(s))
      return Fail(idx, "maps tensor '" + tensor + "' to shard '" + s + "', which is not in the repo");
    if (!shard_names[s].count(tensor))
      return Fail(s, "does not contain tensor '" + tensor + "' that " + idx + " places there");
    named_shards.insert(s);
  }
  for (const auto& s : named_shards)
    for (const auto& t : shard_names[s]) {
      auto it = wm->find(t);
      if (it == wm->end())
        return Fail(idx, "does not list tensor '" + t + "' of shard '" + s + "'");
      if (*it != s)
        return Fail(idx, "places tensor '" + t + "' in '" + it->get<std::string>() +
                             "' but it is in '" + s + "'");
    }
  return Status::Ok();
}

// Quantization from the tensors; checks it against config.json.
Status CheckQuant(const std::map<std::string, SafetensorsInfo>& shards, const json& config,
                  ModelReport* rep) {
  std::map<std::string, const TensorInfo*> all;
  for (const auto& [file, info] : shards)
    for (const auto& t : info.tensors) all[t.name] = &t;
  const QuantInfo& cq = rep->config_quant;
  const json* qcfg = nullptr;
  for (const char* key : {"quantization", "quantization_config"})
    if (auto q = config.find(key); q != config.end() && q->is_object()) {
      qcfg = &*q;
      break;
    }
  std::set<std::string> packed_scales;
  for (const auto& [name, t] : all) {
    if (!name.ends_with(".weight") || t->dtype != "U32") continue;
    std::string prefix = name.substr(0, name.size() - 7);
    auto sc = all.find(prefix + ".scales");
    if (sc == all.end()) continue;
    packed_scales.insert(prefix);
    const TensorInfo* s = sc->second;
    if (t->shape.empty() || t->shape.size() != s->shape.size())
      return Fail(name, "packed weight and its scales have different ranks");
    int gs = cq.group_size;
    if (qcfg) {  // per-layer override, as mlx-lm writes them
      auto ov = qcfg->find(prefix);
      if (ov != qcfg->end() && ov->is_object() && ov->contains("group_size") &&
          (*ov)["group_size"].is_number_integer())
        gs = (*ov)["group_size"].get<int>();
    }
    int bits = InferBits(t->shape.back(), s->shape.back(), gs);
    if (bits == 0)
      return Fail(name, "packed U32 weight shape does not fit its scales for any bit width");
    rep->packed_layers_by_bits[bits]++;
    if (cq.present && cq.mode == "affine") {
      int want = cq.bits;
      if (qcfg) {
        auto ov = qcfg->find(prefix);
        if (ov != qcfg->end() && ov->is_object() && ov->contains("bits") &&
            (*ov)["bits"].is_number_integer())
          want = (*ov)["bits"].get<int>();
      }
      if (want != bits) {
        // Either the bits or the group size of config.json disagree with the tensors; both are
        // said. MLX Swift quantizes each layer with config.json's group_size and bits and then
        // refuses weights of other shapes (mlx-lm infers them from the tensors instead).
        std::string alt;
        const uint64_t packed = t->shape.back(), scale_cols = s->shape.back();
        if (want > 0 && (packed * 32) % static_cast<uint64_t>(want) == 0) {
          const uint64_t in = packed * 32 / static_cast<uint64_t>(want);
          if (scale_cols > 0 && in % scale_cols == 0 && static_cast<int>(in / scale_cols) != gs)
            alt = "; or, as " + std::to_string(want) + "-bit, its group size is " +
                  std::to_string(in / scale_cols) + ", not config.json's " + std::to_string(gs);
        }
        return Fail(name, "is packed as " + std::to_string(bits) + "-bit but config.json says " +
                              std::to_string(want) + "-bit" + alt +
                              " (quantization mismatch: MLX Swift quantizes with config.json's "
                              "bits and group_size and would refuse these weights)");
      }
    }
  }
  uint64_t most = 0;
  for (const auto& [bits, n] : rep->packed_layers_by_bits)
    if (n > most) {
      most = n;
      rep->tensor_quant.present = true;
      rep->tensor_quant.bits = bits;
    }
  if (rep->tensor_quant.present) {
    rep->tensor_quant.group_size = cq.group_size;
    rep->tensor_quant.mode = all.count(*packed_scales.begin() + ".biases") ? "affine" : "";
  }
  if (rep->tensor_quant.present && !cq.present)
    return Fail("config.json", "has no quantization but the weights are packed " +
                                   std::to_string(rep->tensor_quant.bits) +
                                   "-bit (quantization mismatch)");
  if (!rep->tensor_quant.present && cq.present)
    return Fail("config.json", "declares " + std::to_string(cq.bits) +
                                   "-bit quantization but no weight is packed (quantization mismatch)");
  // Parameter estimate.
  for (const auto& [name, t] : all) {
    bool is_aux = false;
    for (const char* suffix : {".scales", ".biases"})
      if (name.ends_with(suffix) && packed_scales.count(name.substr(0, name.size() - 7))) is_aux = true;
    if (is_aux) continue;
    uint64_t n = t->elements();
    if (name.ends_with(".weight") && packed_scales.count(name.substr(0, name.size() - 7))) {
      const TensorInfo* s = all[name.substr(0, name.size() - 7) + ".scales"];
      int bits = InferBits(t->shape.back(), s->shape.back(), cq.group_size);
      n = bits ? n * 32 / static_cast<uint64_t>(bits) : n;
    }
    rep->parameters += n;
  }
  return Status::Ok();
}

}  // namespace

std::string NoWeightsNote(const std::string& repo) {
  return repo + " holds no weight files (no *.safetensors, *.gguf, *.bin, *.pt): it is not a "
                "model, so its files were synced as plain files without model checks";
}

Result<ManifestKind> CheckManifest(const std::string& repo, const std::vector<std::string>& paths,
                                   bool any_format) {
  std::vector<std::string> st, gguf, torch;
  for (const auto& p : paths) {
    if (p.ends_with(".safetensors")) st.push_back(p);
    else if (p.ends_with(".gguf")) gguf.push_back(p);
    else if (IsTorch(p)) torch.push_back(p);
  }
  if (!st.empty()) return ManifestKind::kSafetensors;
  if (gguf.empty() && torch.empty()) return ManifestKind::kNoWeights;
  if (any_format) return ManifestKind::kOtherWeights;
  std::string holds;
  if (!gguf.empty()) holds = "GGUF weights (" + Join(gguf) + ")";
  if (!torch.empty())
    holds += std::string(holds.empty() ? "" : " and ") + "PyTorch weights (" + Join(torch) + ")";
  return Status::InvalidArgument(
      repo + " holds only " + holds + " and no safetensors: MLX cannot load it. Look for an "
      "MLX conversion (https://huggingface.co/mlx-community, e.g. mlx-community/<name>-4bit), "
      "or pass --any-format to download it anyway (no marker will be written)");
}

std::string ModelReport::QuantSummary() const {
  const QuantInfo& q = config_quant.present ? config_quant : tensor_quant;
  if (!q.present) return "none";
  std::string s = std::to_string(q.bits) + "-bit";
  if (!q.mode.empty()) s += " " + q.mode;
  if (q.group_size) s += ", group size " + std::to_string(q.group_size);
  return s;
}

Result<ModelReport> CheckModelDir(const std::string& dir, const std::vector<std::string>& paths) {
  ModelReport rep;
  std::set<std::string> all(paths.begin(), paths.end()), root_files;
  for (const auto& p : paths)
    if (p.find('/') == std::string::npos) root_files.insert(p);
  std::vector<std::string> other_weights;
  for (const auto& p : paths) {
    if (p.ends_with(".safetensors")) rep.safetensors_files.push_back(p);
    else if (p.ends_with(".gguf") || IsTorch(p)) other_weights.push_back(p);
  }
  if (rep.safetensors_files.empty())
    return Fail(other_weights.empty() ? std::string("(repo)") : other_weights[0],
                "no *.safetensors weights: MLX cannot load this model; it stays unmarked");
  json config;
  MS_RETURN_IF_ERROR(CheckConfig(dir, root_files, &rep, &config));
  MS_RETURN_IF_ERROR(CheckTokenizer(root_files));
  std::map<std::string, SafetensorsInfo> shards;
  for (const auto& f : rep.safetensors_files) {
    MS_ASSIGN_OR_RETURN(SafetensorsInfo info, ReadSafetensorsFile(JoinPath(dir, f), f));
    rep.tensors += info.tensors.size();
    rep.tensor_bytes += info.data_bytes;
    shards.emplace(f, std::move(info));
  }
  if (all.count("model.safetensors.index.json")) MS_RETURN_IF_ERROR(CheckIndex(dir, all, shards));
  std::map<std::string, const TensorInfo*> tensors;
  for (const auto& [file, info] : shards)
    for (const auto& t : info.tensors) tensors[t.name] = &t;
  MS_RETURN_IF_ERROR(CheckShapes(config, tensors));
  MS_RETURN_IF_ERROR(CheckQuant(shards, config, &rep));
  return rep;
}

}  // namespace modelsync::engine
