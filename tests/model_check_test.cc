// Model checks (issue #8): the safetensors header parser on bytes, CheckManifest and
// CheckModelDir on fixture variants written to real directories, and `modelsync pull`
// end to end against the emulator (marker written or refused, each with its own message).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "engine/model_check.h"
#include "engine/safetensors.h"
#include "fixtures/fixtures.h"
#include "fixtures/model_files.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::engine;
using namespace modelsync::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Files = std::map<std::string, std::string>;

std::string Le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A safetensors file from a raw JSON header and a data buffer of data_bytes.
std::string RawSt(const std::string& header, uint64_t data_bytes) {
  return Le64(header.size()) + header + std::string(data_bytes, '\x01');
}

uint64_t DataBytes(const std::vector<fixtures::TensorSpec>& t) {
  uint64_t n = 0;
  for (const auto& s : t) n += s.bytes();
  return n;
}

std::string StFile(const std::vector<fixtures::TensorSpec>& t) {
  return fixtures::SafetensorsHeader(t) + std::string(DataBytes(t), '\x02');
}

std::vector<fixtures::TensorSpec> Tensors() { return fixtures::QuantizedModelTensors(64 << 10); }

Files TextFiles() {
  return {{"config.json", fixtures::ModelConfigJson(256, 2, fixtures::IntermediateSize(Tensors()))},
          {"tokenizer.json", fixtures::TokenizerJson(100)},
          {"tokenizer_config.json", fixtures::TokenizerConfigJson("")},
          {"README.md", "# test\n"}};
}

Files SingleModel() {
  Files f = TextFiles();
  auto t = Tensors();
  f["model.safetensors"] = StFile(t);
  f["model.safetensors.index.json"] = fixtures::SafetensorsIndex({{"model.safetensors", t}});
  return f;
}

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

Files ShardedModel() {
  Files f = TextFiles();
  auto t = Tensors();
  std::vector<fixtures::TensorSpec> a(t.begin(), t.begin() + static_cast<long>(t.size() / 2)),
      b(t.begin() + static_cast<long>(t.size() / 2), t.end());
  f[kShard1] = StFile(a);
  f[kShard2] = StFile(b);
  f["model.safetensors.index.json"] = fixtures::SafetensorsIndex({{kShard1, a}, {kShard2, b}});
  return f;
}

// Replaces the first occurrence of from (same length) inside the header of a safetensors file.
std::string PatchHeader(std::string file, const std::string& from, const std::string& to) {
  auto k = file.find(from);
  REQUIRE(k != std::string::npos);
  file.replace(k, from.size(), to);
  return file;
}

// The variants of issue #8; expect = "" for a model that passes, else a fragment of the error.
struct Variant {
  std::string name;
  Files files;
  std::string expect;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v;
  v.push_back({"valid-single", SingleModel(), ""});
  v.push_back({"valid-sharded", ShardedModel(), ""});
  {
    Files f = SingleModel();
    std::string& st = f["model.safetensors"];
    st.replace(0, 8, Le64(st.size()));
    v.push_back({"header-past-end", f, "runs past the end"});
  }
  {
    Files f = SingleModel();
    f["model.safetensors"] = PatchHeader(f["model.safetensors"], "\"dtype\"", "\"dtype'");
    v.push_back({"header-not-json", f, "not valid UTF-8 JSON"});
  }
  {
    Files f = SingleModel();
    f["model.safetensors"] = PatchHeader(f["model.safetensors"], "\"BF16\"", "\"XF16\"");
    v.push_back({"unknown-dtype", f, "unknown dtype 'XF16'"});
  }
  {
    Files f = SingleModel();
    f["model.safetensors"] = RawSt(
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12);
    f.erase("model.safetensors.index.json");
    v.push_back({"overlap", f, "overlaps tensor 'a'"});
  }
  {
    Files f = SingleModel();
    f["model.safetensors"] = RawSt(
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20);
    f.erase("model.safetensors.index.json");
    v.push_back({"gap", f, "a gap of 4 bytes"});
  }
  {
    Files f = ShardedModel();
    f.erase(kShard2);
    v.push_back({"shard-missing", f, std::string("shard '") + kShard2 + "', which is not in the repo"});
  }
  {
    Files f = ShardedModel();
    json idx = json::parse(f["model.safetensors.index.json"]);
    idx["weight_map"]["model.extra.weight"] = kShard1;
    f["model.safetensors.index.json"] = idx.dump(4);
    v.push_back({"tensor-missing-from-shard", f, "does not contain tensor 'model.extra.weight'"});
  }
  {
    Files f = ShardedModel();
    json idx = json::parse(f["model.safetensors.index.json"]);
    idx["weight_map"].erase(idx["weight_map"].begin());
    f["model.safetensors.index.json"] = idx.dump(4);
    v.push_back({"tensor-missing-from-index", f, "does not list tensor"});
  }
  {
    Files f = SingleModel();
    f.erase("tokenizer.json");
    v.push_back({"no-tokenizer", f, "tokenizer.json: missing"});
  }
  {
    Files f = SingleModel();
    f["config.json"] = "{\"hidden_size\": 4}";
    v.push_back({"no-model-type", f, "names no model_type"});
  }
  {
    Files f = SingleModel();
    json c = json::parse(f["config.json"]);
    c["quantization"]["bits"] = 8;
    c.erase("quantization_config");
    f["config.json"] = c.dump();
    v.push_back({"quant-mismatch", f, "packed as 4-bit but config.json says 8-bit"});
  }
  {
    Files f = SingleModel();
    json c = json::parse(f["config.json"]);
    c["quantization"]["group_size"] = 128;
    c.erase("quantization_config");
    f["config.json"] = c.dump();
    v.push_back({"group-size-mismatch", f, "as 4-bit, its group size is 64, not config.json's 128"});
  }
  {  // the shapes config.json gives qwen2 (engine/model_shapes.h)
    Files f = SingleModel();
    json c = json::parse(f["config.json"]);
    c["intermediate_size"] = c["intermediate_size"].get<int>() + 64;
    f["config.json"] = c.dump();
    v.push_back({"wrong-shape", f, "mlp.up_proj.weight: is packed as"});
    c = json::parse(SingleModel()["config.json"]);
    c["hidden_size"] = 512;
    f["config.json"] = c.dump();
    v.push_back({"wrong-norm", f, "input_layernorm.weight: has shape [256] but hidden_size 512"});
    c = json::parse(SingleModel()["config.json"]);
    c["num_hidden_layers"] = 3;
    f["config.json"] = c.dump();
    v.push_back({"missing-layer", f, "model.layers.2: has no tensors though num_hidden_layers 3"});
    c["num_hidden_layers"] = 1;
    f["config.json"] = c.dump();
    v.push_back({"extra-layer", f, "belongs to layer 1 but num_hidden_layers 1 has no such layer"});
    c = json::parse(SingleModel()["config.json"]);
    c["tie_word_embeddings"] = false;
    f["config.json"] = c.dump();
    v.push_back({"no-lm-head", f, "lm_head.weight: is missing though tie_word_embeddings is false"});
  }
  return v;
}

void WriteDir(const std::string& dir, const Files& files) {
  for (const auto& [p, c] : files) {
    fs::create_directories(fs::path(dir + "/" + p).parent_path());
    std::ofstream(dir + "/" + p, std::ios::binary) << c;
  }
}

std::vector<std::string> Paths(const Files& f) {
  std::vector<std::string> out;
  for (const auto& [p, c] : f) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("safetensors parser: valid files, dtypes and every refusal on bytes") {
  auto t = Tensors();
  auto ok = ParseSafetensorsBytes(StFile(t), "m.safetensors");
  REQUIRE(ok.ok());
  CHECK(ok->tensors.size() == t.size());
  CHECK(ok->data_bytes == DataBytes(t));
  CHECK(ok->metadata.at("format") == "mlx");

  CHECK(SafetensorsDtypeBits("BF16") == 16);
  CHECK(SafetensorsDtypeBits("F4") == 4);
  CHECK(SafetensorsDtypeBits("F6_E2M3") == 6);
  CHECK(SafetensorsDtypeBits("F8_E8M0") == 8);
  CHECK(SafetensorsDtypeBits("Q4") == 0);

  auto err = [](const std::string& bytes) {
    auto r = ParseSafetensorsBytes(bytes, "x.safetensors");
    REQUIRE(!r.ok());
    CHECK(r.status().message().find("x.safetensors") == 0);
    return r.status().message();
  };
  CHECK(err("abc").find("shorter than the 8-byte") != std::string::npos);
  CHECK(err(Le64(1ull << 40) + "{}").find("exceeds the") != std::string::npos);
  CHECK(err(Le64(10) + "{}").find("runs past the end") != std::string::npos);
  CHECK(err(RawSt("[1,2]", 0)).find("does not start with '{'") != std::string::npos);
  CHECK(err(RawSt("{\"a\":", 0)).find("not valid UTF-8 JSON") != std::string::npos);
  CHECK(err(RawSt("{\"\xff\":1}", 0)).find("not valid UTF-8 JSON") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0))
            .find("not a non-negative integer") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
            .find("needs 12 bytes") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8))
            .find("ending before") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}})", 1))
            .find("misaligned") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 10))
            .find("2 bytes at the end") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8))
            .find("past the 8-byte data buffer") != std::string::npos);
  CHECK(err(RawSt(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16]}})", 0))
            .find("overflows") != std::string::npos);
  CHECK(err(RawSt(R"({"__metadata__":{"k":1}})", 0)).find("not a string") != std::string::npos);
  // Sub-byte dtype with a whole byte count, scalars, empty tensors and padding are fine.
  auto sub = ParseSafetensorsBytes(
      RawSt(R"({"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]},)"
            R"("s":{"dtype":"F32","shape":[],"data_offsets":[2,6]},)"
            R"("e":{"dtype":"F16","shape":[0,3],"data_offsets":[6,6]}}   )", 6),
      "sub");
  CHECK(sub.ok());
}

TEST_CASE("safetensors from a file reads only the header") {
  TempDir d;
  std::string path = d.path() + "/m.safetensors";
  auto t = Tensors();
  std::ofstream(path, std::ios::binary) << StFile(t);
  auto r = ReadSafetensorsFile(path, "m.safetensors");
  REQUIRE(r.ok());
  CHECK(r->tensors.size() == t.size());
  // A sparse 3 GiB data buffer: validation must not read it (this test would take seconds).
  std::string big = d.path() + "/big.safetensors";
  std::string hdr = R"({"w":{"dtype":"U8","shape":[3221225472],"data_offsets":[0,3221225472]}})";
  std::ofstream(big, std::ios::binary) << Le64(hdr.size()) << hdr;
  fs::resize_file(big, 8 + hdr.size() + 3221225472ull);
  CHECK(ReadSafetensorsFile(big, "big").ok());
  fs::resize_file(big, 8 + hdr.size() + 100);
  auto trunc = ReadSafetensorsFile(big, "big");
  CHECK(!trunc.ok());
  CHECK(ReadSafetensorsFile(d.path() + "/none", "none").status().IsNotFound());
}

TEST_CASE("manifest check: GGUF-only and PyTorch-only refused, no weights is not a model") {
  auto g = CheckManifest("o/g", {"README.md", "m-Q4_K_M.gguf"}, false);
  REQUIRE(!g.ok());
  CHECK(g.status().code() == StatusCode::kInvalidArgument);
  CHECK(g.status().message().find("only GGUF weights (m-Q4_K_M.gguf)") != std::string::npos);
  CHECK(g.status().message().find("mlx-community") != std::string::npos);
  auto b = CheckManifest("o/b", {"config.json", "pytorch_model.bin", "training_args.bin"}, false);
  REQUIRE(!b.ok());
  CHECK(b.status().message().find("only PyTorch weights (pytorch_model.bin)") != std::string::npos);
  CHECK(*CheckManifest("o/b", {"pytorch_model.bin"}, true) == ManifestKind::kOtherWeights);
  CHECK(*CheckManifest("o/n", {"README.md", "training_args.bin"}, false) == ManifestKind::kNoWeights);
  CHECK(*CheckManifest("o/s", {"model.safetensors", "x.gguf"}, false) == ManifestKind::kSafetensors);
}

TEST_CASE("model dir check: each fixture variant gives its own outcome") {
  for (const auto& v : Variants()) {
    CAPTURE(v.name);
    TempDir d;
    WriteDir(d.path(), v.files);
    auto r = CheckModelDir(d.path(), Paths(v.files));
    if (v.expect.empty()) {
      REQUIRE(r.ok());
      CHECK(r->model_type == "qwen2");
      CHECK(r->QuantSummary() == "4-bit affine, group size 64");
      CHECK(r->tensor_quant.bits == 4);
      CHECK(r->tensors == Tensors().size());
      CHECK(r->parameters > 0);
    } else {
      REQUIRE(!r.ok());
      INFO(r.status().message());
      CHECK(r.status().message().find(v.expect) != std::string::npos);
    }
  }
}

namespace {

struct VariantHub {
  VariantHub() : fixtures(Opts()), emu(EmulatorProcess::Options{fixtures.path(), "tok_0123456789", 1000, false, {}}) {
    for (const auto& v : Variants()) Add("test/" + v.name, v.files);
    Add("test/bin-only", {{"config.json", "{\"model_type\":\"llama\"}"},
                          {"pytorch_model.bin", std::string(1000, 'x')}});
    Add("test/docs-only", {{"README.md", "docs\n"}, {"notes.txt", "n\n"}});
    REQUIRE(emu.Start().ok());
  }
  static fixtures::FixtureOptions Opts() {
    fixtures::FixtureOptions o;
    o.only = {"gguf"};
    o.gguf_bytes = 64 << 10;
    return o;
  }
  void Add(const std::string& id, const Files& files) {
    fixtures::RepoBuilder b(fixtures.path(), id);
    REQUIRE(b.AddFile(".gitattributes", fixtures::DefaultGitattributes()).ok());
    for (const auto& [p, c] : files) REQUIRE(b.AddFile(p, c).ok());
    auto sha = b.Commit("init");
    REQUIRE(sha.ok());
    b.SetRef("main", *sha);
    REQUIRE(b.Write().ok());
  }
  std::map<std::string, std::string> Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root}, {"HF_ENDPOINT", emu.hub_url()}, {"HF_TOKEN", "\x01unset"},
            {"HF_HUB_OFFLINE", "\x01unset"}, {"HF_HOME", root + "/.hf-home"}};
  }
  FixtureDir fixtures;
  EmulatorProcess emu;
};

}  // namespace

TEST_CASE("pull end to end: valid models get a marker; bad ones are refused without one") {
  VariantHub hub;
  for (const char* name : {"valid-single", "valid-sharded", "header-not-json", "gap",
                           "shard-missing", "no-tokenizer"}) {
    CAPTURE(name);
    TempDir root;
    auto r = RunCli({"pull", std::string("test/") + name}, hub.Env(root.path()));
    INFO(r.err);
    bool valid = std::string(name).rfind("valid", 0) == 0;
    CHECK(fs::exists(root.path() + "/" + name) == valid);
    if (valid) {
      CHECK(r.exit_code == 0);
      CHECK(r.out.find("qwen2 model, 4-bit affine, group size 64") != std::string::npos);
    } else {
      CHECK(r.exit_code == 1);
      CHECK(r.err.find("no marker was written") != std::string::npos);
      for (const auto& v : Variants())
        if (v.name == name) CHECK(r.err.find(v.expect) != std::string::npos);
      // The files are there and verified; only the marker is withheld, again on a rerun.
      CHECK(fs::exists(root.path() + "/models/test/" + name + "/config.json"));
      auto again = RunCli({"pull", std::string("test/") + name}, hub.Env(root.path()));
      CHECK(again.exit_code == 1);
      CHECK(!fs::exists(root.path() + "/" + name));
    }
  }
}

TEST_CASE("pull end to end: GGUF-only and .bin-only refused before any fetch; --any-format") {
  VariantHub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  auto g = RunCli({"pull", fixtures::kGgufRepo}, env);
  CHECK(g.exit_code == 2);
  CHECK(g.err.find("only GGUF weights") != std::string::npos);
  CHECK((*hub.emu.Stats())["cdn"]["requests"].get<int>() == 0);
  CHECK(!fs::exists(root.path() + "/models/fixtures/Tiny-GGUF"));

  auto b = RunCli({"pull", "test/bin-only"}, env);
  CHECK(b.exit_code == 2);
  CHECK(b.err.find("only PyTorch weights (pytorch_model.bin)") != std::string::npos);

  // --any-format did what was asked: exit 0, and it says no marker was written and why.
  auto any = RunCli({"pull", fixtures::kGgufRepo, "--any-format"}, env);
  INFO(any.out, any.err);
  CHECK(any.exit_code == 0);
  CHECK(any.out.find("no marker: fixtures/Tiny-GGUF holds GGUF or PyTorch weights") !=
        std::string::npos);
  CHECK(fs::exists(root.path() + "/models/fixtures/Tiny-GGUF/tiny-model-Q4_K_M.gguf"));
  CHECK(!fs::exists(root.path() + "/Tiny-GGUF"));

  auto docs = RunCli({"pull", "test/docs-only", "--json"}, env);
  CHECK(docs.exit_code == 0);
  CHECK(docs.out.find("it is not a model") != std::string::npos);
  // Plain files: synced, but no marker (a marker means "a model MLX can load").
  CHECK_FALSE(fs::exists(root.path() + "/docs-only"));
  CHECK(docs.out.find("\"written\":false") != std::string::npos);
}

TEST_CASE("inspect reports a pulled model locally; catalog lists curated models pull accepts") {
  VariantHub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", "test/valid-sharded", "--quiet"}, env).exit_code == 0);
  hub.emu.Stop();  // inspect needs no network
  auto r = RunCli({"inspect", "test/valid-sharded", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(r.out);
  CHECK(j["model_type"] == "qwen2");
  CHECK(j["quantization"] == "4-bit affine, group size 64");
  CHECK(j["quantization_tensor_bits"] == 4);
  CHECK(j["tensors"].get<uint64_t>() == Tensors().size());
  CHECK(j["marker"]["written"] == true);
  CHECK(j["verified"].get<std::string>().size() == 20);
  CHECK(j["files"].size() == ShardedModel().size() + 1);  // + .gitattributes
  uint64_t total = 0;
  for (const auto& [p, c] : ShardedModel()) total += c.size();
  CHECK(j["bytes_total"].get<uint64_t>() == total + fixtures::DefaultGitattributes().size());
  // Parameter estimate: packed U32 counts 8 params (4-bit) per element; scales/biases skipped.
  uint64_t params = 0;
  for (const auto& t : Tensors()) {
    if (t.name.find(".scales") != std::string::npos || t.name.find(".biases") != std::string::npos) continue;
    params += t.dtype == "U32" ? t.bytes() / 4 * 8 : t.bytes() / 2;
  }
  CHECK(j["parameters"].get<uint64_t>() == params);
  auto text = RunCli({"inspect", "valid-sharded"}, env);  // by model id
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("4-bit affine") != std::string::npos);
  auto none = RunCli({"inspect", "test/never"}, env);
  CHECK(none.exit_code == 8);

  auto cat = RunCli({"catalog", "--json"});
  CHECK(cat.exit_code == 0);
  for (const char* repo : {"mlx-community/Qwen2.5-0.5B-Instruct-4bit",
                           "mlx-community/SmolLM2-135M-Instruct-4bit",
                           "mlx-community/Llama-3.2-1B-Instruct-4bit"})
    CHECK(cat.out.find(repo) != std::string::npos);
  REQUIRE(hub.emu.Start().ok());
  auto p = RunCli({"pull", "qwen2.5-0.5b"}, hub.Env(root.path()));
  CHECK(p.exit_code == 8);  // the emulator does not hold it: the error names the real repo
  CHECK(p.err.find("mlx-community/Qwen2.5-0.5B-Instruct-4bit") != std::string::npos);
}

TEST_CASE("add-local adopts a model directory: blobs, log, layout, marker; bad dirs refused") {
  TempDir src, root;
  Files files = ShardedModel();
  WriteDir(src.path(), files);
  std::map<std::string, std::string> env = {{"MODELSYNC_ROOT", root.path()}};
  auto r = RunCli({"add-local", src.path(), "--id", "mine", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(r.out);
  CHECK(j["repo"] == "local/mine");
  CHECK(j["quantization"] == "4-bit affine, group size 64");
  CHECK(fs::exists(root.path() + "/mine"));
  for (const auto& [p, c] : files) {
    std::ifstream in(root.path() + "/models/local/mine/" + p, std::ios::binary);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(got == c);
    CHECK(fs::exists(root.path() + "/.modelsync/blobs/" + Sha256Hex(c)));
  }
  auto st = RunCli({"status", "--json"}, env);
  CHECK(st.exit_code == 0);
  CHECK(st.out.find("local/mine") != std::string::npos);
  CHECK(st.out.find("complete") != std::string::npos);
  auto ins = RunCli({"inspect", "mine", "--json"}, env);
  CHECK(ins.exit_code == 0);
  CHECK(json::parse(ins.out)["commit"] == j["commit"]);
  // Adding the same directory again is idempotent: same synthetic commit.
  auto again = RunCli({"add-local", src.path(), "--id", "mine", "--json"}, env);
  CHECK(again.exit_code == 0);
  CHECK(json::parse(again.out)["commit"] == j["commit"]);

  TempDir bad;
  Files nf = ShardedModel();
  nf.erase("tokenizer.json");
  WriteDir(bad.path(), nf);
  auto b = RunCli({"add-local", bad.path(), "--id", "bad"}, env);
  CHECK(b.exit_code == 2);  // the directory given is no model: a bad argument
  CHECK(b.err.find("tokenizer.json: missing") != std::string::npos);
  CHECK(!fs::exists(root.path() + "/bad"));
}
