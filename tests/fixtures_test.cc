// The fixture maker: valid safetensors, the mlx-community shape, the versions diff, hostile
// names listed verbatim, deterministic commits.
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "base/fs.h"
#include "base/hash.h"
#include "emulator_env.h"
#include "fixtures/model_files.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;

namespace {

std::map<std::string, json> FilesAt(const FixtureDir& fx, const std::string& repo,
                                    const std::string& ref) {
  json j = fx.RepoJson(repo);
  std::string sha = j["refs"].contains(ref) ? j["refs"][ref].get<std::string>() : ref;
  std::map<std::string, json> out;
  for (const auto& f : j["commits"][sha]["files"]) out[f["path"].get<std::string>()] = f;
  return out;
}

// Parses a safetensors file and checks the format rules (PROTOCOL §8).
void CheckSafetensors(const std::string& data, uint64_t* tensor_bytes) {
  REQUIRE(data.size() >= 8);
  uint64_t n = 0;
  std::memcpy(&n, data.data(), 8);  // little-endian host
  REQUIRE(8 + n <= data.size());
  CHECK((8 + n) % 8 == 0);
  json h = json::parse(data.substr(8, n));
  CHECK(h["__metadata__"]["format"] == "mlx");
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (auto& [name, t] : h.items()) {
    if (name == "__metadata__") continue;
    std::string dt = t["dtype"];
    CHECK((dt == "U32" || dt == "BF16" || dt == "F16"));
    uint64_t elems = 1;
    for (auto d : t["shape"]) elems *= d.get<uint64_t>();
    uint64_t b = t["data_offsets"][0], e = t["data_offsets"][1];
    CHECK(e - b == elems * (dt == "U32" ? 4 : 2));
    if (name.size() > 7 && name.substr(name.size() - 7) == ".scales") {
      std::string w = name.substr(0, name.size() - 7) + ".weight";
      REQUIRE(h.contains(w));
      CHECK(h[w]["dtype"] == "U32");
      CHECK(h[w]["shape"][1].get<uint64_t>() * 8 ==
            t["shape"][1].get<uint64_t>() * 64);  // 4-bit, group 64
    }
    spans.emplace_back(b, e);
  }
  std::sort(spans.begin(), spans.end());
  uint64_t pos = 0;
  for (auto [b, e] : spans) {
    CHECK(b == pos);
    pos = e;
  }
  CHECK(pos == data.size() - 8 - n);  // the buffer is covered exactly
  *tensor_bytes = pos;
}

}  // namespace

TEST_CASE("fixtures: mlx-community model shape and a valid safetensors") {
  auto& env = EmulatorEnv::Get();
  auto files = FilesAt(env.fixtures, fixtures::kModelRepo, "main");
  for (const char* name :
       {".gitattributes", "README.md", "config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "model.safetensors", "model.safetensors.index.json"}) {
    CHECK_MESSAGE(files.count(name), name);
  }
  CHECK(files[".gitattributes"]["size"] == 1519);
  CHECK(files[".gitattributes"]["git_oid"] == "a6344aac8c09253b3b630fb776ae94478aa0275b");
  CHECK(!files["config.json"].contains("lfs_sha256"));
  CHECK(files["model.safetensors"].contains("lfs_sha256"));
  auto config =
      json::parse(*ReadFile(env.fixtures.ObjectPath(fixtures::kModelRepo, "main", "config.json")));
  json q = {{"group_size", 64}, {"bits", 4}, {"mode", "affine"}};
  CHECK(config["quantization"] == q);
  CHECK(config["quantization_config"] == q);

  std::string st =
      *ReadFile(env.fixtures.ObjectPath(fixtures::kModelRepo, "main", "model.safetensors"));
  uint64_t tensor_bytes = 0;
  CheckSafetensors(st, &tensor_bytes);
  CHECK(tensor_bytes <= 512u << 10);
  CHECK(tensor_bytes > 480u << 10);
  // LFS bookkeeping: sha256 of content, git oid of the pointer.
  std::string sha = Sha256Hex(st);
  CHECK(files["model.safetensors"]["lfs_sha256"] == sha);
  CHECK(files["model.safetensors"]["git_oid"] ==
        GitBlobSha1Hex(fixtures::LfsPointer(sha, st.size())));
  auto index = json::parse(*ReadFile(
      env.fixtures.ObjectPath(fixtures::kModelRepo, "main", "model.safetensors.index.json")));
  CHECK(index["metadata"]["total_size"] == tensor_bytes);
  for (auto& [t, file] : index["weight_map"].items()) CHECK(file == "model.safetensors");

  auto sharded = FilesAt(env.fixtures, fixtures::kShardedRepo, "main");
  uint64_t total = 0;
  for (const char* s : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
    REQUIRE(sharded.count(s));
    uint64_t b = 0;
    CheckSafetensors(*ReadFile(env.fixtures.ObjectPath(fixtures::kShardedRepo, "main", s)), &b);
    total += b;
  }
  auto sindex = json::parse(*ReadFile(
      env.fixtures.ObjectPath(fixtures::kShardedRepo, "main", "model.safetensors.index.json")));
  CHECK(sindex["metadata"]["total_size"] == total);

  auto gguf = FilesAt(env.fixtures, fixtures::kGgufRepo, "main");
  REQUIRE(gguf.count("tiny-model-Q4_K_M.gguf"));
  CHECK(gguf["tiny-model-Q4_K_M.gguf"].contains("lfs_sha256"));
  CHECK(ReadFile(env.fixtures.ObjectPath(fixtures::kGgufRepo, "main", "tiny-model-Q4_K_M.gguf"))
            ->substr(0, 4) == "GGUF");
}

TEST_CASE("fixtures: versions v1 -> v2 diff") {
  auto& env = EmulatorEnv::Get();
  auto v1 = FilesAt(env.fixtures, fixtures::kVersionsRepo, "v1");
  auto v2 = FilesAt(env.fixtures, fixtures::kVersionsRepo, "main");
  CHECK(v1.count("notes.txt"));
  CHECK(!v2.count("notes.txt"));
  CHECK(!v1.count("generation_config.json"));
  CHECK(v2.count("generation_config.json"));
  CHECK(v1["README.md"]["git_oid"] != v2["README.md"]["git_oid"]);
  CHECK(v1["tokenizer_config.json"]["git_oid"] != v2["tokenizer_config.json"]["git_oid"]);
  CHECK(v1["model.safetensors"] == v2["model.safetensors"]);
  CHECK(v1["config.json"] == v2["config.json"]);
  json j = env.fixtures.RepoJson(fixtures::kVersionsRepo);
  CHECK(j["commits"][j["refs"]["main"].get<std::string>()]["parent"] == j["refs"]["v1"]);
}

TEST_CASE("fixtures: commit shas are deterministic") {
  TempDir a, b;
  fixtures::FixtureOptions o;
  o.only = {"model", "versions"};
  o.weights_bytes = 64 << 10;
  REQUIRE(fixtures::MakeFixtures(a.path(), o).ok());
  REQUIRE(fixtures::MakeFixtures(b.path(), o).ok());
  for (const char* repo : {fixtures::kModelRepo, fixtures::kVersionsRepo}) {
    CHECK(*ReadFile(a.path() + "/" + repo + "/repo.json") ==
          *ReadFile(b.path() + "/" + repo + "/repo.json"));
  }
  o.only = {"nonsense"};
  CHECK(!fixtures::MakeFixtures(a.path(), o).ok());
}

TEST_CASE("fixtures: hostile names are listed verbatim by the emulator") {
  auto& env = EmulatorEnv::Get();
  auto r = Http(
      env.Hub(std::string("/api/models/") + fixtures::kHostileRepo + "/tree/main?recursive=true"));
  REQUIRE(r.status == 200);
  std::set<std::string> listed;
  for (const auto& e : json::parse(r.body))
    if (e["type"] == "file") listed.insert(e["path"].get<std::string>());
  for (const std::string& p : fixtures::HostilePaths()) CHECK_MESSAGE(listed.count(p), p);
  // And served under their encoded names.
  std::string enc = "%2E%2E%2Fx";  // "../x" as one encoded segment
  CHECK(Http(env.Hub(std::string("/") + fixtures::kHostileRepo + "/resolve/main/" + enc)).body ==
        "hostile: ../x\n");
}
