#include "engine/torch_convert.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/ggml_dequant.h"
#include "engine/safetensors_writer.h"
#include "engine/torch_checkpoint.h"
#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

using json = nlohmann::ordered_json;

constexpr uint64_t kMaxCopied = 64u << 20;  // a tokenizer.json is a few MiB
constexpr char kIndex[] = "pytorch_model.bin.index.json";

std::pair<std::string, std::string> Split(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// Files beside the weights that an MLX model directory keeps: configuration, tokenizer,
// chat template. Never code (*.py) or other weights.
bool Copied(const std::string& name) {
  if (name == kIndex || name == "model.safetensors.index.json" || name.empty() || name[0] == '.') return false;
  return name.ends_with(".json") || name.ends_with(".txt") || name.ends_with(".model") ||
         name.ends_with(".jinja") || name.ends_with(".tiktoken");
}

Result<std::string> ReadSmall(storage::Dir& dir, const std::string& name, const std::string& shown) {
  MS_ASSIGN_OR_RETURN(auto f, dir.OpenFile(name, storage::OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(auto info, f->Stat());
  if (info.size > kMaxCopied)
    return Status::InvalidArgument(shown + " is " + std::to_string(info.size >> 20) +
                                   " MiB; a configuration or tokenizer file is at most 64 MiB");
  std::string s(info.size, '\0');
  size_t got = 0;
  while (got < s.size()) {
    MS_ASSIGN_OR_RETURN(size_t k, f->PRead(got, s.data() + got, s.size() - got));
    if (k == 0) return Status::IOError(shown + " shrank while it was read");
    got += k;
  }
  return s;
}

bool IsFloat(const std::string& dtype) { return dtype == "F32" || dtype == "F16" || dtype == "BF16"; }

float ToFloat(const std::string& dtype, const unsigned char* p) {
  if (dtype == "F32") {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  const uint16_t h = static_cast<uint16_t>(p[0] | (p[1] << 8));
  if (dtype == "F16") return HalfToFloat(h);
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// Reads a tensor's elements in row-major order from its storage: one pread when the
// tensor is contiguous; otherwise element by element through a small cache of 1 MiB
// blocks of the storage (a view's elements are near each other, or repeat).
class TensorReader {
 public:
  TensorReader(storage::File& f, const TorchTensor& t, const std::string& what)
      : f_(f), t_(t), what_(what), es_(DtypeBytes(t.dtype)) {}

  Status Read(uint64_t first, uint64_t count, unsigned char* out) {
    if (t_.contiguous) return ReadRange(t_.data_offset + (t_.storage_offset + first) * es_, count * es_, out);
    const size_t nd = t_.shape.size();
    std::vector<uint64_t> idx(nd);
    uint64_t rem = first;
    for (size_t k = nd; k-- > 0;) {
      idx[k] = rem % t_.shape[k];
      rem /= t_.shape[k];
    }
    for (uint64_t e = 0; e < count; ++e) {
      uint64_t src = t_.storage_offset;
      for (size_t k = 0; k < nd; ++k) src += idx[k] * t_.stride[k];
      MS_RETURN_IF_ERROR(Cached(src * es_, out + e * es_));
      for (size_t k = nd; k-- > 0;) {
        if (++idx[k] < t_.shape[k]) break;
        idx[k] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  Status ReadRange(uint64_t off, uint64_t n, unsigned char* out) {
    uint64_t got = 0;
    while (got < n) {
      MS_ASSIGN_OR_RETURN(size_t k, f_.PRead(off + got, out + got, n - got));
      if (k == 0) return Status::IOError(what_ + " ended early (at offset " + std::to_string(off + got) + ")");
      got += k;
    }
    return Status::Ok();
  }
  // One element at byte `at` of the storage.
  Status Cached(uint64_t at, unsigned char* out) {
    constexpr uint64_t kBlock = 1u << 20;
    constexpr size_t kSlots = 8;
    const uint64_t b = at / kBlock;
    Slot& s = slots_[b % kSlots];
    if (s.block != b) {
      const uint64_t start = b * kBlock;
      const uint64_t n = std::min<uint64_t>(kBlock, t_.data_bytes - start);
      s.data.resize(n);
      MS_RETURN_IF_ERROR(ReadRange(t_.data_offset + start, n, s.data.data()));
      s.block = b;
    }
    std::memcpy(out, s.data.data() + (at - b * kBlock), es_);
    return Status::Ok();
  }
  struct Slot {
    uint64_t block = ~0ull;
    std::vector<unsigned char> data;
  };
  storage::File& f_;
  const TorchTensor& t_;
  const std::string& what_;
  const uint64_t es_;
  Slot slots_[8];
};

struct TorchJob {  // one source tensor
  size_t file = 0;  // index into the weight files
  const TorchTensor* src = nullptr;
  uint32_t bits = 0;  // --quantize
  int weight = -1, scales = -1, biases = -1;  // planned tensor indexes
};

class TorchConverter {
 public:
  TorchConverter(const Env& env, const ConvertOptions& o) : env_(env), o_(o) {}

  Result<ConvertReport> Run() {
    MS_ASSIGN_OR_RETURN(src_, FindTorchSource(env_, o_.source));
    MS_ASSIGN_OR_RETURN(src_dir_, env_.fs->OpenRoot(src_.dir, false));
    MS_RETURN_IF_ERROR(ReadCheckpoints());
    MS_ASSIGN_OR_RETURN(std::string config_text, ReadSmall(*src_dir_, "config.json", src_.dir + "/config.json"));
    json config = json::parse(config_text, nullptr, false);
    if (config.is_discarded() || !config.is_object())
      return Status::InvalidArgument(src_.dir + "/config.json is not a JSON object");
    report_.model_type = config.value("model_type", std::string());
    report_.architecture = config.contains("architectures") && config["architectures"].is_array() &&
                                   !config["architectures"].empty() && config["architectures"][0].is_string()
                               ? config["architectures"][0].get<std::string>()
                               : report_.model_type;
    Plan();
    if (o_.quantize_bits) {
      json q = {{"group_size", 64}, {"bits", o_.quantize_bits}, {"mode", "affine"}};
      config["quantization"] = q;
      config["quantization_config"] = q;
      config_text = config.dump(2) + "\n";
    }
    // Everything is read and checked: now the directory.
    MS_RETURN_IF_ERROR(MakeOutDir());
    Status st = Write(config_text);
    if (!st.ok()) {
      writer_.reset();
      files_.clear();
      out_.reset();
      if (auto parent = env_.fs->OpenRoot(Split(o_.out_dir).first, false); parent.ok())
        (void)(*parent)->RemoveTree(Split(o_.out_dir).second);
      return st;
    }
    return std::move(report_);
  }

 private:
  Status ReadCheckpoints() {
    std::map<std::string, std::string> weight_map;  // from the index, when sharded
    if (src_.main == kIndex) {
      MS_ASSIGN_OR_RETURN(std::string text, ReadSmall(*src_dir_, kIndex, src_.dir + "/" + kIndex));
      json index = json::parse(text, nullptr, false);
      if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
          !index["weight_map"].is_object())
        return Status::InvalidArgument(src_.dir + "/" + kIndex + " has no weight_map object");
      for (const auto& [name, file] : index["weight_map"].items()) {
        if (!file.is_string())
          return Status::InvalidArgument(src_.dir + "/" + kIndex + ": '" + name + "' maps to a non-string");
        weight_map[name] = file.get<std::string>();
      }
    }
    std::map<std::string, std::string> where;  // tensor -> file
    for (size_t i = 0; i < src_.weights.size(); ++i) {
      const std::string path = src_.dir + "/" + src_.weights[i];
      MS_ASSIGN_OR_RETURN(TorchCheckpoint c, ReadTorchCheckpoint(env_, path));
      MS_ASSIGN_OR_RETURN(auto f, src_dir_->OpenFile(src_.weights[i], storage::OpenMode::kRead));
      files_.push_back(std::move(f));
      checkpoints_.push_back(std::move(c));
      for (const auto& t : checkpoints_.back().tensors) {
        if (auto [it, fresh] = where.emplace(t.name, src_.weights[i]); !fresh)
          return Status::InvalidArgument("tensor '" + t.name + "' is in both " + it->second + " and " +
                                         src_.weights[i] + ": nothing was written");
        if (!weight_map.empty()) {
          auto w = weight_map.find(t.name);
          if (w == weight_map.end() || w->second != src_.weights[i])
            return Status::InvalidArgument(
                path + " holds '" + t.name + "', which " + kIndex + " places " +
                (w == weight_map.end() ? std::string("nowhere") : "in " + w->second) +
                ": the checkpoint and its index disagree; nothing was written");
        }
      }
    }
    for (const auto& [name, file] : weight_map)
      if (!where.count(name))
        return Status::InvalidArgument(src_.dir + "/" + kIndex + " places '" + name + "' in " + file +
                                       ", which does not hold it (an incomplete download?): nothing was written");
    if (where.empty()) return Status::InvalidArgument(o_.source + " holds no tensors");
    return Status::Ok();
  }

  void Plan() {
    for (size_t i = 0; i < checkpoints_.size(); ++i) {
      for (const auto& t : checkpoints_[i].tensors) {
        TorchJob j;
        j.file = i;
        j.src = &t;
        ConvertedTensor ct{t.name, t.name, t.dtype, t.dtype, true};
        if (o_.quantize_bits && IsFloat(t.dtype) && t.shape.size() == 2 && t.shape[1] % 64 == 0 &&
            t.shape[1] > 0 && t.name.ends_with(".weight")) {
          const std::string base = t.name.substr(0, t.name.size() - 7);
          j.bits = static_cast<uint32_t>(o_.quantize_bits);
          j.weight = Add(base + ".weight", "U32", {t.shape[0], t.shape[1] * j.bits / 32});
          j.scales = Add(base + ".scales", "F16", {t.shape[0], t.shape[1] / 64});
          j.biases = Add(base + ".biases", "F16", {t.shape[0], t.shape[1] / 64});
          ct.as = std::to_string(j.bits) + "-bit g64 (quantized)";
          ct.lossless = false;
        } else {
          j.weight = Add(t.name, t.dtype, t.shape);
        }
        if (ct.lossless) ++report_.lossless;
        report_.tensors.push_back(std::move(ct));
        jobs_.push_back(j);
      }
    }
  }

  int Add(std::string name, std::string dtype, std::vector<uint64_t> shape) {
    planned_.push_back({std::move(name), std::move(dtype), std::move(shape)});
    job_of_.push_back(jobs_.size());
    return static_cast<int>(planned_.size() - 1);
  }

  Status MakeOutDir() {
    auto [parent_path, leaf] = Split(o_.out_dir);
    MS_ASSIGN_OR_RETURN(auto parent, env_.fs->OpenRoot(parent_path, false));
    bool created = false;
    MS_RETURN_IF_ERROR(parent->MakeDir(leaf, &created));
    if (!created) return Status::InvalidArgument(o_.out_dir + " already exists: convert writes a new directory");
    MS_ASSIGN_OR_RETURN(out_, parent->OpenDir(leaf));
    return Status::Ok();
  }

  Status Write(const std::string& config) {
    std::vector<std::pair<std::string, std::string>> copies;
    uint64_t extra = config.size();
    for (const auto& name : src_.copied) {
      if (name == "config.json") continue;
      MS_ASSIGN_OR_RETURN(std::string text, ReadSmall(*src_dir_, name, src_.dir + "/" + name));
      extra += text.size();
      copies.emplace_back(name, std::move(text));
    }
    writer_ = std::make_unique<SafetensorsWriter>(*out_, planned_, o_.shard_bytes);
    MS_RETURN_IF_ERROR(writer_->Open(extra, o_.source));
    uint64_t done = 0;
    for (int i : writer_->order()) {
      MS_RETURN_IF_ERROR(WriteTensor(jobs_[job_of_[i]], i));
      done += writer_->tensor_bytes(i);
      if (o_.progress) o_.progress(done, writer_->total_bytes());
    }
    WrittenFiles w;
    MS_RETURN_IF_ERROR(writer_->Finish(&w));
    MS_RETURN_IF_ERROR(WriteSmallFile(*out_, "config.json", config, &w));
    std::string tok;
    for (const auto& [name, text] : copies) {
      MS_RETURN_IF_ERROR(WriteSmallFile(*out_, name, text, &w));
      if (name.find("tokenizer") != std::string::npos || name == "vocab.json" || name == "merges.txt")
        tok += (tok.empty() ? "" : ", ") + name;
    }
    report_.tokenizer = tok.empty() ? "none copied" : "copied (" + tok + ")";
    report_.files = std::move(w.files);
    report_.sha256 = std::move(w.sha256);
    report_.bytes_out = w.bytes;
    return out_->Sync();
  }

  Status Cancelled() const {
    return Status::Cancelled("the conversion of " + o_.source + " was interrupted; nothing of it was kept");
  }

  Status WriteTensor(const TorchJob& j, int part) {
    const TorchTensor& t = *j.src;
    const std::string what = src_.dir + "/" + src_.weights[j.file];
    TensorReader reader(*files_[j.file], t, what);
    const uint64_t es = DtypeBytes(t.dtype);
    if (!j.bits) {
      uint64_t elems = 1;
      for (auto d : t.shape) elems *= d;
      const uint64_t batch = std::max<uint64_t>(1, kConvertBatchBytes / es);
      for (uint64_t e = 0; e < elems; e += batch) {
        if (o_.cancel && o_.cancel->load()) return Cancelled();
        const uint64_t n = std::min(batch, elems - e);
        std::string buf(n * es, '\0');
        MS_RETURN_IF_ERROR(reader.Read(e, n, reinterpret_cast<unsigned char*>(buf.data())));
        MS_RETURN_IF_ERROR(writer_->Append(part, std::move(buf)));
      }
      return Status::Ok();
    }
    // Quantized: weight, scales and biases are each a pass over the rows (float16 values
    // quantized by mx.quantize's rule, group 64); only the part being written is kept.
    const uint64_t rows = t.shape[0], cols = t.shape[1], groups = cols / 64;
    const uint64_t w_row = cols * j.bits / 8;
    const uint64_t batch = std::max<uint64_t>(1, kConvertBatchBytes / (cols * es));
    std::vector<unsigned char> in;
    std::vector<float> vals(cols);
    std::vector<unsigned char> packed(64 * j.bits / 8);
    for (uint64_t r0 = 0; r0 < rows; r0 += batch) {
      if (o_.cancel && o_.cancel->load()) return Cancelled();
      const uint64_t nr = std::min(batch, rows - r0);
      in.resize(nr * cols * es);
      MS_RETURN_IF_ERROR(reader.Read(r0 * cols, nr * cols, in.data()));
      std::string out(nr * (part == j.weight ? w_row : groups * 2), '\0');
      auto* o = reinterpret_cast<unsigned char*>(out.data());
      for (uint64_t r = 0; r < nr; ++r) {
        for (uint64_t k = 0; k < cols; ++k)
          vals[k] = HalfToFloat(FloatToHalf(ToFloat(t.dtype, in.data() + (r * cols + k) * es)));
        for (uint64_t g = 0; g < groups; ++g) {
          uint16_t sc, bi;
          unsigned char* w = part == j.weight ? o + r * w_row + g * 64 * j.bits / 8 : packed.data();
          MlxQuantizeGroup(vals.data() + g * 64, 64, static_cast<int>(j.bits), w, &sc, &bi);
          if (part == j.scales) std::memcpy(o + (r * groups + g) * 2, &sc, 2);
          if (part == j.biases) std::memcpy(o + (r * groups + g) * 2, &bi, 2);
        }
      }
      MS_RETURN_IF_ERROR(writer_->Append(part, std::move(out)));
    }
    return Status::Ok();
  }

  const Env& env_;
  const ConvertOptions& o_;
  TorchSource src_;
  std::unique_ptr<storage::Dir> src_dir_, out_;
  std::vector<TorchCheckpoint> checkpoints_;
  std::vector<std::unique_ptr<storage::File>> files_;
  std::vector<TorchJob> jobs_;
  std::vector<PlannedTensor> planned_;
  std::vector<size_t> job_of_;
  std::unique_ptr<SafetensorsWriter> writer_;
  ConvertReport report_;
};

}  // namespace

Result<TorchSource> FindTorchSource(const Env& env, const std::string& path) {
  TorchSource s;
  MS_ASSIGN_OR_RETURN(std::string abs, env.fs->ResolvePath(path, false));
  std::string given;
  {
    auto [dir, leaf] = Split(abs);
    MS_ASSIGN_OR_RETURN(auto d, env.fs->OpenRoot(dir, false));
    MS_ASSIGN_OR_RETURN(auto info, d->Stat(leaf));
    if (info.type == storage::FileInfo::Type::kDir) {
      s.dir = abs;
    } else {
      s.dir = dir;
      given = leaf;
    }
  }
  MS_ASSIGN_OR_RETURN(auto d, env.fs->OpenRoot(s.dir, false));
  MS_ASSIGN_OR_RETURN(auto names, d->List());
  std::sort(names.begin(), names.end());
  std::set<std::string> present(names.begin(), names.end());
  if (given.empty()) {
    given = present.count(kIndex) ? kIndex : present.count("pytorch_model.bin") ? "pytorch_model.bin" : "";
    if (given.empty()) {
      std::string bins;
      for (const auto& n : names)
        if (n.ends_with(".bin")) bins += (bins.empty() ? "" : ", ") + n;
      return Status::InvalidArgument(
          s.dir + " has neither pytorch_model.bin nor " + kIndex +
          (bins.empty() ? std::string(" (no .bin file at all)") : "; name one of its .bin files: " + bins));
    }
  }
  s.main = given;
  if (given.ends_with(".index.json")) {
    MS_ASSIGN_OR_RETURN(std::string text, ReadSmall(*d, given, s.dir + "/" + given));
    json index = json::parse(text, nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      return Status::InvalidArgument(s.dir + "/" + given + " has no weight_map object");
    std::set<std::string> files;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) return Status::InvalidArgument(s.dir + "/" + given + ": '" + name + "' maps to a non-string");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == ".." || !f.ends_with(".bin"))
        return Status::InvalidArgument(s.dir + "/" + given + " names the shard '" + f +
                                       "', not a .bin file beside it");
      if (!present.count(f))
        return Status::InvalidArgument(s.dir + "/" + given + " names the shard " + f +
                                       ", which is not in " + s.dir + " (an incomplete download?)");
      files.insert(f);
    }
    s.weights.assign(files.begin(), files.end());
  } else if (given.ends_with(".bin")) {
    s.weights.push_back(given);
  } else {
    return Status::InvalidArgument(path + " is not a .bin checkpoint, its index, or a directory holding one");
  }
  if (!present.count("config.json"))
    return Status::InvalidArgument(s.dir + " has no config.json: an MLX model needs one (copy the "
                                   "model's config.json beside its weights)");
  for (const auto& n : names) {
    if (n == given || !Copied(n)) continue;
    auto info = d->Stat(n);
    if (info.ok() && info->type == storage::FileInfo::Type::kFile) s.copied.push_back(n);
  }
  return s;
}

bool LooksLikeTorchSource(const Env& env, const std::string& path) {
  if (path.ends_with(".bin") || path.ends_with(".index.json")) return true;
  if (path.ends_with(".gguf")) return false;
  auto [dir, leaf] = Split(path);
  auto d = env.fs->OpenRoot(dir, false);
  if (!d.ok()) return false;
  auto info = (*d)->Stat(leaf);
  return info.ok() && info->type == storage::FileInfo::Type::kDir;
}

Result<ConvertReport> ConvertTorch(const Env& env, const ConvertOptions& options) {
  return TorchConverter(env, options).Run();
}

}  // namespace modelsync::engine
