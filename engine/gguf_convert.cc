#include "engine/gguf_convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "engine/gguf.h"
#include "engine/gguf_repack.h"
#include "engine/ggml_dequant.h"
#include "engine/gguf_tokenizer.h"
#include "engine/rope_scaling.h"
#include "engine/safetensors_writer.h"
#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

using json = nlohmann::ordered_json;

constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = kGgmlQ4_0, kQ4_1 = kGgmlQ4_1, kQ8_0 = kGgmlQ8_0, kBF16 = 30;

// ---- what each GGUF tensor becomes -------------------------------------------------------

struct ArchInfo {
  const char* model_type;
  const char* hf_class;
  bool permute_qk;  // llama.cpp's converter permuted q/k rows for rotary embedding
};

const ArchInfo* FindArch(const std::string& arch) {
  static const std::map<std::string, ArchInfo> table = {
      {"llama", {"llama", "LlamaForCausalLM", true}},
      {"qwen2", {"qwen2", "Qwen2ForCausalLM", false}},
  };
  auto it = table.find(arch);
  return it == table.end() ? nullptr : &it->second;
}

// The Hugging Face name of a llama.cpp tensor name; "" when it has none.
std::string HfName(const std::string& g, int* layer) {
  static const std::map<std::string, std::string> top = {
      {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}};
  static const std::map<std::string, std::string> block = {
      {"attn_norm", "input_layernorm"},    {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},      {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  *layer = -1;
  size_t dot = g.rfind('.');
  if (dot == std::string::npos) return "";
  const std::string suffix = g.substr(dot);  // ".weight" / ".bias"
  if (suffix != ".weight" && suffix != ".bias") return "";
  const std::string stem = g.substr(0, dot);
  if (auto it = top.find(stem); it != top.end()) return it->second + suffix;
  if (stem.rfind("blk.", 0) != 0) return "";
  size_t d2 = stem.find('.', 4);
  if (d2 == std::string::npos || d2 == 4 || d2 - 4 > 6) return "";
  int n = 0;
  for (size_t i = 4; i < d2; ++i) {
    if (stem[i] < '0' || stem[i] > '9') return "";
    n = n * 10 + (stem[i] - '0');
  }
  auto it = block.find(stem.substr(d2 + 1));
  if (it == block.end()) return "";
  *layer = n;
  return "model.layers." + std::to_string(n) + "." + it->second + suffix;
}

struct Part {  // one output tensor
  int job = -1;  // the source tensor it is made from
  std::string name, dtype;
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;
  size_t shard = 0;
  uint64_t offset = 0;  // within its shard's data
};

struct GgufJob {  // one source tensor
  const GgufTensor* src = nullptr;
  std::string base;   // output name without ".weight" for quantized ones
  uint32_t bits = 0;  // 0 = kept as is (or dequantized)
  bool dequant = false;  // a K-quant / Q5: dequantized to float16
  uint32_t requant = 0;  // --quantize: the float16 values quantized by MLX's rule, group 64
  uint64_t rows = 0, cols = 0;
  uint64_t heads = 0;  // rows are llama.cpp-permuted in this many heads; 0 = not permuted
  int weight = -1, scales = -1, biases = -1;  // indexes into parts
};

const char* KeptDtype(uint32_t t) {
  switch (t) {
    case kF32: return "F32";
    case kF16: return "F16";
    case kBF16: return "BF16";
    default: return nullptr;
  }
}

uint64_t MetaU64(const GgufInfo& g, const std::string& key, uint64_t fallback) {
  auto it = g.metadata.find(key);
  return it != g.metadata.end() && it->is_number_unsigned() ? it->get<uint64_t>()
         : it != g.metadata.end() && it->is_number_integer() && it->get<int64_t>() >= 0
             ? static_cast<uint64_t>(it->get<int64_t>())
             : fallback;
}

// A float32 metadata value as the shortest decimal that reads back as the same float32
// (1e-05, not 9.999999747378752e-06).
json MetaFloat(const GgufInfo& g, const std::string& key, double fallback) {
  auto it = g.metadata.find(key);
  if (it == g.metadata.end() || !it->is_number()) return fallback;
  const double v = it->get<double>();
  const float f = static_cast<float>(v);
  for (int prec = 1; prec <= 9; ++prec) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(f));
    if (static_cast<float>(std::strtod(buf, nullptr)) == f) return std::strtod(buf, nullptr);
  }
  return v;
}

// The most one part of a quantized tensor may take to be computed ahead and held (a 4-bit
// 4096 x 8192 weight; a larger one, such as a big vocabulary's embedding, takes a pass of its own).
constexpr uint64_t kHeldBytes = 16u << 20;

// The source row an output row is read from: llama.cpp stored head h's rows as
// [h, i, j] = HF [h, j, i] (i < D/2, j < 2); undone here.
inline uint64_t SourceRow(uint64_t r, uint64_t head_dim) {
  const uint64_t h = r / head_dim, w = r % head_dim, half = head_dim / 2;
  return h * head_dim + 2 * (w % half) + w / half;
}

class GgufConverter {
 public:
  GgufConverter(const Env& env, const ConvertOptions& o) : env_(env), o_(o) {}

  Result<ConvertReport> Run() {
    MS_ASSIGN_OR_RETURN(info_, ReadGgufFile(env_, o_.source));
    MS_RETURN_IF_ERROR(Plan());
    MS_ASSIGN_OR_RETURN(tok_, BuildGgufTokenizer(info_, MetaU64(info_, arch_ + ".context_length", 0)));
    if (tok_.vocab_size != vocab_rows_)
      return Status::InvalidArgument(
          o_.source + ": the tokenizer has " + std::to_string(tok_.vocab_size) +
          " tokens but token_embd.weight has " + std::to_string(vocab_rows_) + " rows");
    MS_ASSIGN_OR_RETURN(std::string config, ConfigJson());
    // Everything is checked: now the directory.
    MS_RETURN_IF_ERROR(MakeOutDir());
    Status st = Write(config);
    if (!st.ok()) {
      writer_.reset();
      src_.reset();
      out_.reset();
      if (auto parent = env_.fs->OpenRoot(parent_path_, false); parent.ok())
        (void)(*parent)->RemoveTree(leaf_);
      return st;
    }
    return std::move(report_);
  }

 private:
  Status Plan() {
    const ArchInfo* arch = FindArch(info_.architecture);
    if (!arch)
      return Status::InvalidArgument(
          o_.source + ": architecture '" + info_.architecture +
          "' is not one the converter knows (llama, qwen2): nothing was written");
    arch_ = info_.architecture;
    report_.architecture = arch_;
    report_.model_type = arch->model_type;
    const uint64_t n_head = MetaU64(info_, arch_ + ".attention.head_count", 0);
    const uint64_t n_kv = MetaU64(info_, arch_ + ".attention.head_count_kv", n_head);
    if (n_head == 0 || n_kv == 0)
      return Status::InvalidArgument(o_.source + ": " + arch_ +
                                     ".attention.head_count is missing or zero");
    for (const auto& t : info_.tensors) {
      if (t.name == "rope_freqs.weight") {
        // Llama 3.1+ rope scaling: not a weight of the model; config.json's rope_scaling
        // is recovered from it (engine/rope_scaling.h).
        if (t.type != kF32 || t.dims.size() != 1 || t.dims[0] > 4096)
          return Status::InvalidArgument(o_.source + ": rope_freqs.weight is not a float32 vector");
        rope_freqs_ = &t;
        continue;
      }
      int layer;
      std::string hf = HfName(t.name, &layer);
      if (hf.empty())
        return Status::InvalidArgument(o_.source + ": tensor '" + t.name +
                                       "' has no counterpart in an MLX " + arch_ +
                                       " model: nothing was written");
      const GgmlType* type = FindGgmlType(t.type);
      GgufJob job;
      job.src = &t;
      job.cols = t.dims.empty() ? 1 : t.dims[0];
      job.rows = 1;
      for (size_t i = 1; i < t.dims.size(); ++i) job.rows *= t.dims[i];
      std::vector<uint64_t> shape(t.dims.rbegin(), t.dims.rend());
      ConvertedTensor ct{hf, t.name, type ? type->name : "?", "", true};
      if (t.type == kQ4_0 || t.type == kQ4_1 || t.type == kQ8_0) {
        if (t.dims.size() != 2)
          return Status::InvalidArgument(o_.source + ": quantized tensor '" + t.name + "' has " +
                                         std::to_string(t.dims.size()) + " dimensions, not 2");
        if (hf.size() < 7 || hf.compare(hf.size() - 7, 7, ".weight") != 0)
          return Status::InvalidArgument(o_.source + ": quantized tensor '" + t.name +
                                         "' is a bias");
        job.bits = t.type == kQ8_0 ? 8 : 4;
        job.base = hf.substr(0, hf.size() - 7);
        job.weight = AddPart(job.base + ".weight", "U32", {job.rows, job.cols * job.bits / 32});
        job.scales = AddPart(job.base + ".scales", "F16", {job.rows, job.cols / 32});
        job.biases = AddPart(job.base + ".biases", "F16", {job.rows, job.cols / 32});
        ct.as = std::to_string(job.bits) + "-bit g32";
        bits_by_module_[job.base] = {job.bits, 32};
      } else if (o_.quantize_bits && (KeptDtype(t.type) || CanDequantize(t.type)) &&
                 t.dims.size() == 2 && job.cols % 64 == 0 && hf.size() > 7 &&
                 hf.compare(hf.size() - 7, 7, ".weight") == 0) {
        // --quantize: a float (or dequantized) matrix becomes MLX affine, group 64.
        job.dequant = CanDequantize(t.type);
        job.requant = o_.quantize_bits;
        job.base = hf.substr(0, hf.size() - 7);
        job.weight = AddPart(job.base + ".weight", "U32", {job.rows, job.cols * job.requant / 32});
        job.scales = AddPart(job.base + ".scales", "F16", {job.rows, job.cols / 64});
        job.biases = AddPart(job.base + ".biases", "F16", {job.rows, job.cols / 64});
        ct.as = std::to_string(job.requant) + "-bit g64 (re-quantized)";
        ct.lossless = false;
        bits_by_module_[job.base] = {job.requant, 64};
      } else if (const char* dt = KeptDtype(t.type)) {
        job.weight = AddPart(hf, dt, shape);
        ct.as = dt;
      } else if (CanDequantize(t.type)) {
        job.dequant = true;
        job.weight = AddPart(hf, "F16", shape);
        ct.as = "F16 (dequantized)";
        ct.lossless = false;
      } else {
        return Status::InvalidArgument(
            o_.source + ": tensor '" + t.name + "' is " + (type ? type->name : "of an unknown type") +
            "; the converter takes Q4_0, Q4_1, Q8_0 (bit for bit), F32, F16, BF16, and Q5_0, "
            "Q5_1, Q2_K..Q6_K (dequantized to float16); IQ and other types are not converted "
            "yet: nothing was written");
      }
      if (arch->permute_qk && layer >= 0 &&
          (t.name.find(".attn_q.") != std::string::npos || t.name.find(".attn_k.") != std::string::npos)) {
        job.heads = t.name.find(".attn_q.") != std::string::npos ? n_head : n_kv;
        if (job.rows % (job.heads * 2) != 0)
          return Status::InvalidArgument(o_.source + ": tensor '" + t.name + "' has " +
                                         std::to_string(job.rows) + " rows, not a whole number of " +
                                         std::to_string(job.heads) + " heads of even size");
      }
      if (t.name == "token_embd.weight") vocab_rows_ = job.rows;
      if (t.name == "output.weight") has_output_ = true;
      if (ct.lossless) ++report_.lossless;
      report_.tensors.push_back(std::move(ct));
      jobs_.push_back(std::move(job));
    }
    if (vocab_rows_ == 0)
      return Status::InvalidArgument(o_.source + ": the file has no token_embd.weight");
    n_head_ = n_head;
    n_kv_ = n_kv;
    return Status::Ok();
  }

  int AddPart(std::string name, std::string dtype, std::vector<uint64_t> shape) {
    Part p;
    p.name = std::move(name);
    p.dtype = std::move(dtype);
    p.shape = std::move(shape);
    p.job = static_cast<int>(jobs_.size());  // the job being planned
    parts_.push_back(std::move(p));
    return static_cast<int>(parts_.size() - 1);
  }

  Result<std::string> ConfigJson() {
    const std::string a = arch_ + ".";
    const uint64_t hidden = MetaU64(info_, a + "embedding_length", 0);
    const uint64_t layers = MetaU64(info_, a + "block_count", 0);
    const uint64_t ffn = MetaU64(info_, a + "feed_forward_length", 0);
    if (hidden == 0 || layers == 0 || ffn == 0)
      return Status::InvalidArgument(o_.source + ": " + a +
                                     "embedding_length, block_count or feed_forward_length is "
                                     "missing: no config.json can be written");
    const ArchInfo* arch = FindArch(arch_);
    json c = {{"architectures", json::array({arch->hf_class})},
              {"model_type", arch->model_type},
              {"hidden_size", hidden},
              {"intermediate_size", ffn},
              {"num_hidden_layers", layers},
              {"num_attention_heads", n_head_},
              {"num_key_value_heads", n_kv_},
              {"rms_norm_eps", MetaFloat(info_, a + "attention.layer_norm_rms_epsilon", 1e-6)},
              {"rope_theta", MetaFloat(info_, a + "rope.freq_base", 10000.0)},
              {"max_position_embeddings", MetaU64(info_, a + "context_length", 2048)},
              {"vocab_size", vocab_rows_},
              {"tie_word_embeddings", !has_output_}};
    const uint64_t kl = MetaU64(info_, a + "attention.key_length", 0);
    if (kl && kl != hidden / n_head_) c["head_dim"] = kl;
    if (rope_freqs_) {
      MS_ASSIGN_OR_RETURN(std::vector<float> f, ReadFloats(*rope_freqs_));
      const json base = MetaFloat(info_, a + "rope.freq_base", 10000.0);
      MS_ASSIGN_OR_RETURN(RopeScaling r, Llama3RopeScaling(f, base.get<double>(), kl ? kl : hidden / n_head_,
                                                           o_.source));
      c["rope_scaling"] = {{"factor", r.factor},
                           {"low_freq_factor", r.low_freq_factor},
                           {"high_freq_factor", r.high_freq_factor},
                           {"original_max_position_embeddings", r.original_max_position_embeddings},
                           {"rope_type", "llama3"}};
    }
    if (tok_.bos_id >= 0) c["bos_token_id"] = tok_.bos_id;
    if (tok_.eos_id >= 0) c["eos_token_id"] = tok_.eos_id;
    if (!bits_by_module_.empty()) {
      // The most common (bits, group size) is the default; the others are named per module,
      // as mlx-lm's mixed quantization writes them.
      std::map<std::pair<uint32_t, uint32_t>, int> count;
      for (const auto& [m, bg] : bits_by_module_) ++count[bg];
      const auto common = std::max_element(count.begin(), count.end(), [](auto& x, auto& y) {
                            return x.second < y.second;
                          })->first;
      json q = {{"group_size", common.second}, {"bits", common.first}, {"mode", "affine"}};
      for (const auto& [m, bg] : bits_by_module_)
        if (bg != common) q[m] = {{"group_size", bg.second}, {"bits", bg.first}};
      c["quantization"] = q;
      c["quantization_config"] = q;
    }
    c["modelsync_converted_from"] = {{"format", "gguf"},
                                     {"converter", kConverterVersion},
                                     {"file_type", MetaU64(info_, "general.file_type", 0)}};
    return c.dump(2) + "\n";
  }

  // A float32 tensor's values (small: rope_freqs).
  Result<std::vector<float>> ReadFloats(const GgufTensor& t) {
    MS_ASSIGN_OR_RETURN(auto dir, env_.fs->OpenRoot(SourceDir(), false));
    MS_ASSIGN_OR_RETURN(auto f, dir->OpenFile(SourceLeaf(), storage::OpenMode::kRead));
    std::vector<float> out(t.dims[0]);
    size_t got = 0;
    while (got < t.bytes) {
      MS_ASSIGN_OR_RETURN(size_t k, f->PRead(t.offset + got, reinterpret_cast<char*>(out.data()) + got,
                                             t.bytes - got));
      if (k == 0) return Status::IOError(o_.source + " ended inside rope_freqs.weight");
      got += k;
    }
    return out;
  }

  Status MakeOutDir() {
    const std::string& d = o_.out_dir;
    size_t slash = d.find_last_of('/');
    parent_path_ = slash == std::string::npos ? "." : slash == 0 ? "/" : d.substr(0, slash);
    leaf_ = slash == std::string::npos ? d : d.substr(slash + 1);
    MS_ASSIGN_OR_RETURN(auto parent, env_.fs->OpenRoot(parent_path_, false));
    bool created = false;
    MS_RETURN_IF_ERROR(parent->MakeDir(leaf_, &created));
    if (!created) return Status::InvalidArgument(d + " already exists: convert writes a new directory");
    MS_ASSIGN_OR_RETURN(out_, parent->OpenDir(leaf_));
    return Status::Ok();
  }

  Status Write(const std::string& config) {
    std::vector<PlannedTensor> planned;
    for (const Part& p : parts_) planned.push_back({p.name, p.dtype, p.shape});
    writer_ = std::make_unique<SafetensorsWriter>(*out_, std::move(planned), o_.shard_bytes);
    MS_RETURN_IF_ERROR(writer_->Open(tok_.tokenizer_json.size(), o_.source));
    MS_ASSIGN_OR_RETURN(auto src_dir, env_.fs->OpenRoot(SourceDir(), false));
    MS_ASSIGN_OR_RETURN(src_, src_dir->OpenFile(SourceLeaf(), storage::OpenMode::kRead));
    // Every shard is written front to back (and hashed on the way): the parts in offset
    // order; a quantized tensor's parts from one pass over its source where they fit.
    written_.assign(parts_.size(), false);
    uint64_t done = 0;
    for (int i : writer_->order()) {
      MS_RETURN_IF_ERROR(ConvertTensor(jobs_[parts_[i].job], i));
      done += writer_->tensor_bytes(i);
      if (o_.progress) o_.progress(done, writer_->total_bytes());
    }
    WrittenFiles w;
    MS_RETURN_IF_ERROR(writer_->Finish(&w));
    MS_RETURN_IF_ERROR(WriteSmallFile(*out_, "config.json", config, &w));
    MS_RETURN_IF_ERROR(WriteSmallFile(*out_, "tokenizer.json", tok_.tokenizer_json, &w));
    MS_RETURN_IF_ERROR(WriteSmallFile(*out_, "tokenizer_config.json", tok_.tokenizer_config_json + "\n", &w));
    report_.files = std::move(w.files);
    report_.sha256 = std::move(w.sha256);
    report_.bytes_out = w.bytes;
    report_.tokenizer = tok_.description;
    return out_->Sync();
  }

  std::string SourceDir() const {
    size_t slash = o_.source.find_last_of('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : o_.source.substr(0, slash);
  }
  std::string SourceLeaf() const {
    size_t slash = o_.source.find_last_of('/');
    return slash == std::string::npos ? o_.source : o_.source.substr(slash + 1);
  }

  Status ReadFull(uint64_t off, unsigned char* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
      MS_ASSIGN_OR_RETURN(size_t k, src_->PRead(off + got, buf + got, n - got));
      if (k == 0) return Status::IOError(o_.source + " ended early (at offset " + std::to_string(off + got) + ")");
      got += k;
    }
    return Status::Ok();
  }

  // Writes part `want` of job j (its weight, scales or biases), all rows in order, in batches
  // of whole heads (the rows of a permuted tensor are put back within a batch).
  Status ConvertTensor(const GgufJob& j, int want) {
    if (j.bits) return ConvertQuantized(j, want);
    const GgmlType* type = FindGgmlType(j.src->type);
    const uint64_t src_row = j.src->bytes / j.rows;
    const uint64_t batch = BatchRows(j, src_row);
    const uint64_t w_row = j.requant ? j.cols * j.requant / 8 : j.dequant ? j.cols * 2 : src_row;
    const uint64_t sb_row = j.cols / 64 * 2;
    const uint64_t row_bytes = want == j.weight ? w_row : sb_row;
    const uint64_t head_dim = j.heads ? j.rows / j.heads : 1;
    const bool kept = !j.requant && !j.dequant;  // the bytes as they are
    if (j.requant) row_.resize(j.cols);
    for (uint64_t r0 = 0; r0 < j.rows; r0 += batch) {
      if (o_.cancel && o_.cancel->load()) return Interrupted();
      const uint64_t nr = std::min(batch, j.rows - r0);
      Buffer& out = out_buf_;
      out.resize(nr * row_bytes);
      if (kept && !j.heads) {  // as they are: read and handed on
        MS_RETURN_IF_ERROR(ReadFull(j.src->offset + r0 * src_row, out.data(), nr * src_row));
        MS_RETURN_IF_ERROR(Put(want, out));
        continue;
      }
      in_.resize(batch * src_row);
      MS_RETURN_IF_ERROR(ReadFull(j.src->offset + r0 * src_row, in_.data(), nr * src_row));
      for (uint64_t r = 0; r < nr; ++r) {
        const uint64_t from = j.heads ? SourceRow(r, head_dim) : r;  // batches hold whole heads
        const unsigned char* in = in_.data() + from * src_row;
        if (kept) {
          std::memcpy(out.data() + r * w_row, in, src_row);
        } else if (j.requant) {  // MlxQuantizeGroup gives all three parts; `want` is kept
          RowValues(j, type, in, row_.data());
          unsigned char* w = want == j.weight ? out.data() + r * w_row : nullptr;
          for (uint64_t g = 0; g < j.cols / 64; ++g) {
            uint16_t sc, bi;
            unsigned char packed[64];
            MlxQuantizeGroup(row_.data() + g * 64, 64, static_cast<int>(j.requant),
                             w ? w + g * 64 * j.requant / 8 : packed, &sc, &bi);
            if (want == j.scales) Store16(out.data() + r * sb_row + g * 2, sc);
            if (want == j.biases) Store16(out.data() + r * sb_row + g * 2, bi);
          }
        } else {  // dequantized to float16
          unsigned char* w = out.data() + r * w_row;
          float vals[256];
          const uint64_t n = type->block_values;
          for (uint64_t b = 0; b < j.cols / n; ++b) {
            DequantizeBlock(j.src->type, in + b * type->block_bytes, vals);
            for (uint64_t k = 0; k < n; ++k) Store16(w + (b * n + k) * 2, FloatToHalf(vals[k]));
          }
        }
      }
      MS_RETURN_IF_ERROR(Put(want, out));
    }
    return Status::Ok();
  }

  Status Put(int part, const Buffer& b) {
    return writer_->Append(part, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  }

  // Rows per batch: about kConvertBatchBytes of source, whole heads.
  static uint64_t BatchRows(const GgufJob& j, uint64_t src_row) {
    const uint64_t head_dim = j.heads ? j.rows / j.heads : 1;
    uint64_t batch = std::max<uint64_t>(1, kConvertBatchBytes / std::max<uint64_t>(1, src_row));
    batch = std::max<uint64_t>(head_dim, batch / head_dim * head_dim);
    return std::min(batch, j.rows);
  }

  Status Interrupted() const {
    return Status::Cancelled("the conversion of " + o_.source + " was interrupted; nothing of it was kept");
  }

  // A Q4_0/Q4_1/Q8_0 tensor's three parts come one after another (name order: biases, scales,
  // weight): the first one's pass over the source also computes the others and holds them
  // (each up to kHeldBytes), so the tensor is read once; a larger part takes a pass of its own.
  Status ConvertQuantized(const GgufJob& j, int want) {
    if (auto h = held_.find(want); h != held_.end()) {
      Status st = Put(want, h->second);
      spare_.push_back(std::move(h->second));
      held_.erase(h);
      written_[want] = true;
      return st;
    }
    const uint64_t src_row = j.src->bytes / j.rows;
    const uint64_t batch = BatchRows(j, src_row);
    const uint64_t head_dim = j.heads ? j.rows / j.heads : 1;
    const uint64_t blocks = j.cols / 32;
    const uint64_t w_row = j.cols * j.bits / 8, sb_row = blocks * 2;
    // Where each part's rows go: a batch buffer for `want`, a held buffer for a later part
    // that fits, or nowhere.
    struct Route {
      int part;
      uint64_t row_bytes;
      bool held = false;
      unsigned char* base = nullptr;
    } routes[3] = {{j.weight, w_row}, {j.scales, sb_row}, {j.biases, sb_row}};
    for (Route& rt : routes)
      if (rt.part != want && !written_[rt.part] && j.rows * rt.row_bytes <= kHeldBytes) {
        Buffer& h = held_[rt.part];
        if (!spare_.empty()) h = std::move(spare_.back()), spare_.pop_back();
        h.resize(j.rows * rt.row_bytes);
        rt.held = true;
        rt.base = h.data();
      }
    in_.resize(batch * src_row);
    for (uint64_t r0 = 0; r0 < j.rows; r0 += batch) {
      if (o_.cancel && o_.cancel->load()) return Interrupted();
      const uint64_t nr = std::min(batch, j.rows - r0);
      Buffer& out = out_buf_;
      for (Route& rt : routes)
        if (rt.part == want) out.resize(nr * rt.row_bytes), rt.base = out.data();
      MS_RETURN_IF_ERROR(ReadFull(j.src->offset + r0 * src_row, in_.data(), nr * src_row));
      auto row_of = [&](const Route& rt, uint64_t r) -> unsigned char* {
        if (!rt.base) return nullptr;
        return rt.base + (rt.held ? r0 + r : r) * rt.row_bytes;
      };
      for (uint64_t r = 0; r < nr; ++r) {
        const uint64_t from = j.heads ? SourceRow(r, head_dim) : r;  // batches hold whole heads
        const unsigned char* in = in_.data() + from * src_row;
        unsigned char* w = row_of(routes[0], r);
        unsigned char* sc = row_of(routes[1], r);
        unsigned char* bi = row_of(routes[2], r);
        uint64_t bad;
        if (!RepackRow(j.src->type, in, blocks, w, sc, bi, &bad)) return Overflow(j, r0 + from, bad);
      }
      MS_RETURN_IF_ERROR(Put(want, out));
      for (Route& rt : routes)
        if (rt.part == want) rt.base = nullptr;
    }
    written_[want] = true;
    return Status::Ok();
  }

  // A source row as the float16 values MLX would quantize (each rounded to float16).
  static void RowValues(const GgufJob& j, const GgmlType* type, const unsigned char* in, float* out) {
    const uint32_t t = j.src->type;
    if (j.dequant) {
      const uint64_t n = type->block_values;
      for (uint64_t b = 0; b < j.cols / n; ++b) DequantizeBlock(t, in + b * type->block_bytes, out + b * n);
    } else {
      for (uint64_t k = 0; k < j.cols; ++k) {
        if (t == kF16) {
          out[k] = HalfToFloat(Load16(in + k * 2));
        } else if (t == kBF16) {
          const uint32_t x = static_cast<uint32_t>(Load16(in + k * 2)) << 16;
          std::memcpy(&out[k], &x, 4);
        } else {
          std::memcpy(&out[k], in + k * 4, 4);
        }
      }
    }
    for (uint64_t k = 0; k < j.cols; ++k) out[k] = HalfToFloat(FloatToHalf(out[k]));
  }

  Status Overflow(const GgufJob& j, uint64_t row, uint64_t block) {
    return Status::InvalidArgument(o_.source + ": tensor '" + j.src->name + "' row " +
                                   std::to_string(row) + " block " + std::to_string(block) +
                                   ": its scale times -" + (j.bits == 8 ? "128" : "8") +
                                   " overflows float16, so it has no exact MLX form");
  }

  const Env& env_;
  const ConvertOptions& o_;
  GgufInfo info_;
  GgufTokenizerFiles tok_;
  std::string arch_;
  std::vector<Part> parts_;
  std::vector<GgufJob> jobs_;
  std::map<std::string, std::pair<uint32_t, uint32_t>> bits_by_module_;  // bits, group
  uint64_t vocab_rows_ = 0, n_head_ = 0, n_kv_ = 0;
  bool has_output_ = false;
  const GgufTensor* rope_freqs_ = nullptr;
  ConvertReport report_;
  std::string parent_path_, leaf_;
  std::unique_ptr<storage::Dir> out_;
  std::unique_ptr<storage::File> src_;
  std::unique_ptr<SafetensorsWriter> writer_;
  Buffer in_, out_buf_;          // reused from batch to batch
  std::map<int, Buffer> held_;  // parts computed ahead, whole
  std::vector<Buffer> spare_;   // held buffers to reuse (at most two)
  std::vector<bool> written_;   // by part
  std::vector<float> row_;
};

}  // namespace

Result<ConvertReport> ConvertGguf(const Env& env, const ConvertOptions& options) {
  return GgufConverter(env, options).Run();
}

}  // namespace modelsync::engine
