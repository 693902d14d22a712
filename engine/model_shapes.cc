#include "engine/model_shapes.h"

#include <set>
#include <string_view>

namespace modelsync::engine {
namespace {

using nlohmann::json;

const std::set<std::string> kDecoders = {"llama", "mistral", "qwen2", "qwen3"};

std::string ShapeText(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}


struct Dims {
  uint64_t hidden = 0, inter = 0, vocab = 0, layers = 0, heads = 0, kv = 0, head_dim = 0;
  bool tied = true;
};

// false when config.json lacks a dimension (nothing can be judged then).
bool ReadDims(const json& c, Dims* d) {
  auto get = [&](const char* key, uint64_t* out) {
    auto it = c.find(key);
    if (it == c.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0) return false;
    *out = it->get<uint64_t>();
    return true;
  };
  if (!get("hidden_size", &d->hidden) || !get("intermediate_size", &d->inter) ||
      !get("vocab_size", &d->vocab) || !get("num_hidden_layers", &d->layers) ||
      !get("num_attention_heads", &d->heads))
    return false;
  if (!get("num_key_value_heads", &d->kv)) d->kv = d->heads;
  if (!get("head_dim", &d->head_dim)) d->head_dim = d->hidden / d->heads;
  if (auto t = c.find("tie_word_embeddings"); t != c.end() && t->is_boolean()) d->tied = t->get<bool>();
  return true;
}

class Judge {
 public:
  Judge(const std::map<std::string, const TensorInfo*>& all, const std::string& model_type)
      : all_(all), type_(model_type) {}

  // A [rows, cols] matrix, plain or packed (U32 with .scales beside it).
  Status Matrix(const std::string& name, uint64_t rows, uint64_t cols, const std::string& why) {
    const TensorInfo* t = all_.at(name);
    const std::string prefix = name.substr(0, name.size() - 7);  // drop ".weight"
    auto sc = all_.find(prefix + ".scales");
    if (t->dtype == "U32" && sc != all_.end()) {
      const auto& s = t->shape;
      const auto& ss = sc->second->shape;
      bool ok = s.size() == 2 && s[0] == rows && s[1] > 0 && (s[1] * 32) % cols == 0 &&
                ValidQuantBits(s[1] * 32 / cols) && ss.size() == 2 && ss[0] == rows && ss[1] > 0 &&
                cols % ss[1] == 0;
      if (!ok)
        return Refuse(name, "is packed as " + ShapeText(s) + " with scales " + ShapeText(ss) +
                                ", which cannot hold the " + ShapeText({rows, cols}) +
                                " matrix that " + why + " call for");
      return Status::Ok();
    }
    if (t->shape != std::vector<uint64_t>{rows, cols})
      return Refuse(name, "has shape " + ShapeText(t->shape) + " but " + why + " makes it " +
                              ShapeText({rows, cols}));
    return Status::Ok();
  }

  Status Vector(const std::string& name, uint64_t n, const std::string& why) {
    const TensorInfo* t = all_.at(name);
    if (t->shape != std::vector<uint64_t>{n})
      return Refuse(name, "has shape " + ShapeText(t->shape) + " but " + why + " makes it " +
                              ShapeText({n}));
    return Status::Ok();
  }

  Status Refuse(const std::string& name, const std::string& problem) const {
    return Status::Permanent(name + ": " + problem + " (config.json, " + type_ +
                             "): MLX would refuse the weights");
  }

 private:
  const std::map<std::string, const TensorInfo*>& all_;
  std::string type_;
};

std::string Dim(const char* key, uint64_t v) { return std::string(key) + " " + std::to_string(v); }

}  // namespace

Status CheckShapes(const json& config, const std::map<std::string, const TensorInfo*>& all) {
  auto mt = config.find("model_type");
  if (mt == config.end() || !mt->is_string() || !kDecoders.count(mt->get<std::string>()))
    return Status::Ok();
  Dims d;
  if (!ReadDims(config, &d)) return Status::Ok();
  Judge judge(all, mt->get<std::string>());
  const std::string h = Dim("hidden_size", d.hidden), in = Dim("intermediate_size", d.inter),
                    v = Dim("vocab_size", d.vocab);
  const uint64_t q_rows = d.heads * d.head_dim, kv_rows = d.kv * d.head_dim;
  const std::string q = Dim("num_attention_heads", d.heads) + " x " + Dim("head_dim", d.head_dim),
                    kv = Dim("num_key_value_heads", d.kv) + " x " + Dim("head_dim", d.head_dim);
  std::set<uint64_t> layers_seen;
  for (const auto& [name, t] : all) {
    (void)t;
    if (name == "model.embed_tokens.weight" || name == "lm_head.weight") {
      MS_RETURN_IF_ERROR(judge.Matrix(name, d.vocab, d.hidden, v + ", " + h));
      continue;
    }
    if (name == "model.norm.weight") {
      MS_RETURN_IF_ERROR(judge.Vector(name, d.hidden, h));
      continue;
    }
    if (!name.starts_with("model.layers.")) continue;
    std::string_view rest(name);
    rest.remove_prefix(13);
    size_t dot = rest.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 9) continue;
    uint64_t layer = 0;
    bool digits = true;
    for (char c : rest.substr(0, dot)) {
      if (c < '0' || c > '9') digits = false;
      else layer = layer * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!digits) continue;
    if (layer >= d.layers)
      return judge.Refuse(name, "belongs to layer " + std::to_string(layer) + " but " +
                                    Dim("num_hidden_layers", d.layers) + " has no such layer");
    layers_seen.insert(layer);
    const std::string part(rest.substr(dot + 1));
    if (part == "input_layernorm.weight" || part == "post_attention_layernorm.weight")
      MS_RETURN_IF_ERROR(judge.Vector(name, d.hidden, h));
    else if (part == "self_attn.q_proj.weight")
      MS_RETURN_IF_ERROR(judge.Matrix(name, q_rows, d.hidden, q + ", " + h));
    else if (part == "self_attn.k_proj.weight" || part == "self_attn.v_proj.weight")
      MS_RETURN_IF_ERROR(judge.Matrix(name, kv_rows, d.hidden, kv + ", " + h));
    else if (part == "self_attn.o_proj.weight")
      MS_RETURN_IF_ERROR(judge.Matrix(name, d.hidden, q_rows, h + ", " + q));
    else if (part == "self_attn.q_proj.bias")
      MS_RETURN_IF_ERROR(judge.Vector(name, q_rows, q));
    else if (part == "self_attn.k_proj.bias" || part == "self_attn.v_proj.bias")
      MS_RETURN_IF_ERROR(judge.Vector(name, kv_rows, kv));
    else if (part == "self_attn.q_norm.weight" || part == "self_attn.k_norm.weight")
      MS_RETURN_IF_ERROR(judge.Vector(name, d.head_dim, Dim("head_dim", d.head_dim)));
    else if (part == "mlp.gate_proj.weight" || part == "mlp.up_proj.weight")
      MS_RETURN_IF_ERROR(judge.Matrix(name, d.inter, d.hidden, in + ", " + h));
    else if (part == "mlp.down_proj.weight")
      MS_RETURN_IF_ERROR(judge.Matrix(name, d.hidden, d.inter, h + ", " + in));
  }
  // Layers are judged only when the weights use these names at all (another naming is left be).
  if (!layers_seen.empty())
    for (uint64_t i = 0; i < d.layers; ++i)
      if (!layers_seen.count(i))
        return judge.Refuse("model.layers." + std::to_string(i),
                            "has no tensors though " + Dim("num_hidden_layers", d.layers) +
                                " (a layer or a shard is missing)");
  if (!d.tied && !layers_seen.empty() && !all.count("lm_head.weight"))
    return judge.Refuse("lm_head.weight", "is missing though tie_word_embeddings is false");
  return Status::Ok();
}

}  // namespace modelsync::engine
