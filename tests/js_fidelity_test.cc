// Fidelity: the Hub's own JavaScript client (@huggingface/hub from npm, run by Node) against
// hub_emulator. Every byte it downloads is checked against the fixtures, and every error status
// it reports. Needs node and the npm registry; fails (never skips) without them.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "base/fs.h"
#include "base/hash.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kHubPackage = "@huggingface/hub@2.17.5";
constexpr const char* kToken = "hf_js_fidelity_token";

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string Tail(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return "(no output)";
  return text->size() > 3000 ? text->substr(text->size() - 3000) : *text;
}

// Installs the pinned client under <build>/js-deps once; returns that directory.
std::string EnsureHubClient() {
  // Absolute: node's createRequire refuses relative paths.
  std::string deps = fs::absolute(Env("MODELSYNC_BUILD_DIR", "build") + "/js-deps").string();
  std::string pkg = deps + "/node_modules/@huggingface/hub/package.json";
  auto existing = ReadFile(pkg);
  if (existing.ok() && existing->find("\"version\": \"2.17.5\"") != std::string::npos) return deps;
  REQUIRE(MakeDirs(deps).ok());
  std::string log = deps + "/npm-install.log";
  std::string cmd = "npm install --no-audit --no-fund --no-save --prefix '" + deps + "' " +
                    kHubPackage + " > '" + log + "' 2>&1";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    FAIL("npm could not install " << kHubPackage << " into " << deps << " (exit " << rc
                                  << "). Is node/npm installed and the npm registry "
                                  << "reachable? npm said:\n"
                                  << Tail(log));
  }
  return deps;
}

json Commit(const FixtureDir& fx, const std::string& repo, const std::string& ref) {
  json j = fx.RepoJson(repo);
  std::string sha = j["refs"].contains(ref) ? j["refs"][ref].get<std::string>() : ref;
  json c = j["commits"][sha];
  c["sha"] = sha;
  return c;
}

// Every file of the commit is in the snapshot folder with the right sha256, and nothing else.
void CheckSnapshot(const json& result, const FixtureDir& fx, const std::string& repo,
                   const std::string& ref) {
  CAPTURE(repo);
  CAPTURE(ref);
  REQUIRE_MESSAGE(result["ok"] == true, result.dump());
  json c = Commit(fx, repo, ref);
  std::string folder = result["value"];
  CHECK(fs::path(folder).filename().string() == c["sha"].get<std::string>());
  size_t files_on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(folder)) {
    if (fs::is_regular_file(e.path())) ++files_on_disk;  // follows the blob symlinks
  }
  CHECK(files_on_disk == c["files"].size());
  for (const auto& f : c["files"]) {
    std::string path = folder + "/" + f["path"].get<std::string>();
    CAPTURE(path);
    CHECK(HashFileHex(HashKind::kSha256, path) == f["object"].get<std::string>());
  }
}

void CheckError(const json& r, int status) {
  CAPTURE(r.dump());
  CHECK(r["ok"] == false);
  CHECK(r["error"]["statusCode"] == status);
}

}  // namespace

TEST_CASE("@huggingface/hub (npm) downloads every byte right and reports the right errors") {
  std::string deps = EnsureHubClient();
  fixtures::FixtureOptions o;
  o.weights_bytes = 512 << 10;
  o.small_files = 120;
  FixtureDir fx(o);
  // Page size 25: the many-files listing (131 rows) takes 6 pages through Link headers.
  EmulatorProcess emu({fx.path(), kToken, 25, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir work;
  json cfg = {{"hubUrl", emu.hub_url()},
              {"cacheDir", work.path() + "/cache"},
              {"token", kToken},
              {"repos",
               {{"model", fixtures::kModelRepo},
                {"sharded", fixtures::kShardedRepo},
                {"manyFiles", fixtures::kManyFilesRepo},
                {"versions", fixtures::kVersionsRepo},
                {"gated", fixtures::kGatedRepo},
                {"private", fixtures::kPrivateRepo},
                {"hostile", fixtures::kHostileRepo},
                {"gguf", fixtures::kGgufRepo}}}};
  REQUIRE(WriteFileAtomic(work.path() + "/config.json", cfg.dump()).ok());
  std::string script = Env("MODELSYNC_SOURCE_DIR", ".") + "/tests/js/fidelity.mjs";
  std::string log = work.path() + "/node.log";
  std::string cmd = "timeout 240 node '" + script + "' '" + deps + "' '" + work.path() +
                    "/config.json' '" + work.path() + "/out.json' > '" + log + "' 2>&1";
  int rc = std::system(cmd.c_str());
  REQUIRE_MESSAGE(rc == 0, "node fidelity.mjs failed (exit " << rc << "):\n" << Tail(log));
  auto out_text = ReadFile(work.path() + "/out.json");
  REQUIRE(out_text.ok());
  json r = json::parse(*out_text);

  CheckSnapshot(r["snapshot_model"], fx, fixtures::kModelRepo, "main");
  CheckSnapshot(r["snapshot_sharded"], fx, fixtures::kShardedRepo, "main");
  CheckSnapshot(r["snapshot_many_files"], fx, fixtures::kManyFilesRepo, "main");
  CheckSnapshot(r["snapshot_versions_main"], fx, fixtures::kVersionsRepo, "main");
  CheckSnapshot(r["snapshot_versions_v1"], fx, fixtures::kVersionsRepo, "v1");
  CheckSnapshot(r["snapshot_gguf"], fx, fixtures::kGgufRepo, "main");
  CheckSnapshot(r["snapshot_gated_token"], fx, fixtures::kGatedRepo, "main");
  CheckSnapshot(r["snapshot_private_token"], fx, fixtures::kPrivateRepo, "main");
  auto v1_ref = ReadFile(work.path() + "/cache/models--fixtures--versions/refs/v1");
  REQUIRE(v1_ref.ok());
  CHECK(*v1_ref == Commit(fx, fixtures::kVersionsRepo, "v1")["sha"].get<std::string>());

  // The client itself refuses the hostile listing (its validateRelativeFilename).
  CHECK(r["snapshot_hostile"]["ok"] == false);
  CHECK(r["snapshot_hostile"]["error"]["message"].get<std::string>().find("Invalid filename") !=
        std::string::npos);

  // listFiles followed every Link page: the same rows as the fixture.
  json mf = Commit(fx, fixtures::kManyFilesRepo, "main");
  std::set<std::string> want, got;
  for (const auto& f : mf["files"])
    want.insert(f["path"].get<std::string>() + " " + f["git_oid"].get<std::string>());
  size_t dirs = 0;
  REQUIRE(r["list_many_files"]["ok"] == true);
  for (const auto& e : r["list_many_files"]["value"]) {
    if (e["type"] == "directory") {
      ++dirs;
    } else {
      got.insert(e["path"].get<std::string>() + " " + e["oid"].get<std::string>());
    }
  }
  CHECK(got == want);
  CHECK(dirs == 10);
  bool saw_lfs = false;
  for (const auto& e : r["list_model_top"]["value"]) {
    if (e["path"] == "model.safetensors") {
      saw_lfs = true;
      CHECK(e["lfs"]["oid"] == Commit(fx, fixtures::kModelRepo, "main")["files"][3]["lfs_sha256"]);
    }
  }
  CHECK(saw_lfs);

  auto sha_of = [&](const std::string& repo, const std::string& ref, const std::string& path) {
    return HashFileHex(HashKind::kSha256, fx.ObjectPath(repo, ref, path));
  };
  CHECK(r["download_config"]["value"]["sha256"] ==
        sha_of(fixtures::kModelRepo, "main", "config.json"));
  CHECK(r["download_weights"]["value"]["sha256"] ==
        sha_of(fixtures::kModelRepo, "main", "model.safetensors"));
  CHECK(r["download_v1_notes"]["value"]["sha256"] ==
        sha_of(fixtures::kVersionsRepo, "v1", "notes.txt"));
  CHECK(r["download_gated_weights_token"]["value"]["sha256"] ==
        sha_of(fixtures::kGatedRepo, "main", "model.safetensors"));

  // Errors as the client reports them.
  CHECK(r["download_missing_file"]["ok"] == true);  // 404 EntryNotFound -> null
  CHECK(r["download_missing_file"]["value"].is_null());
  CheckError(r["download_missing_repo"], 401);
  CheckError(r["download_missing_revision"], 404);
  CheckError(r["download_gated_no_token"], 401);
  CheckError(r["download_gated_wrong_token"], 403);
  CheckError(r["snapshot_missing_repo"], 401);
  CheckError(r["snapshot_private_no_token"], 401);
  CheckError(r["snapshot_gated_no_token"], 401);
  CheckError(r["model_info_missing_revision"], 404);
  CHECK(r["file_exists"]["value"] == json({true, true, false}));

  // The listing really was paginated, and the CDN never saw the token.
  auto log_entries = emu.Log();
  REQUIRE(log_entries.ok());
  int cursor_pages = 0, cdn_requests = 0, cdn_with_auth = 0;
  for (const auto& e : *log_entries) {
    if (e["target"].get<std::string>().find("cursor=") != std::string::npos) ++cursor_pages;
    if (e["listener"] == "cdn") {
      ++cdn_requests;
      if (e["authorization"] == true) ++cdn_with_auth;
    }
  }
  CHECK(cursor_pages >= 10);  // 5 follow-up pages for the snapshot, 5 for listFiles
  CHECK(cdn_requests > 0);
  CHECK(cdn_with_auth == 0);
}
