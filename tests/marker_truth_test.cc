// What an app sees is true (issue 13): markers exist iff a loadable model of the repo that
// owns the id is complete; the user's files are never deleted; offline answers only from the
// log; status, ls and models.json tell the truth. Each reproduction of the issue is a case,
// through the real binary against the real emulator over loopback.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "base/hash.h"
#include "base/platform.h"
#include "fixtures/fixtures.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kModel = "mlx-community/Tiny-Model-4bit";
constexpr const char* kTwin = "other-org/Tiny-Model-4bit";  // same name, another org
constexpr const char* kMarker = "Tiny-Model-4bit";

fixtures::FixtureOptions Small() {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 256u << 10;
  fo.only = {"model", "versions", "gguf"};
  return fo;
}

struct Hub {
  Hub() : emu(EmulatorProcess::Options{Prepared(fixtures), "", 1000, false, {}}) {
    REQUIRE(emu.Start().ok());
  }
  static std::string Prepared(const FixtureDir& fx) {
    REQUIRE(fixtures::MakeModelRepo(fx.path(), kTwin, 128u << 10).ok());
    return fx.path();
  }
  std::map<std::string, std::string> Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root},        {"HF_ENDPOINT", emu.hub_url()},
            {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
            {"HF_HOME", root + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  }
  uint64_t CdnBytes() { return (*emu.Stats())["cdn"]["body_bytes"].get<uint64_t>(); }
  uint64_t CdnRequests() { return (*emu.Stats())["cdn"]["requests"].get<uint64_t>(); }
  FixtureDir fixtures{Small()};
  EmulatorProcess emu;
};

CliResult Run(const std::map<std::string, std::string>& env, std::vector<std::string> args) {
  return RunCli(args, env);
}

void Ok(const std::map<std::string, std::string>& env, std::vector<std::string> args) {
  auto r = RunCli(args, env);
  INFO(args[0], " ", (args.size() > 1 ? args[1] : ""), "\nout: ", r.out, "\nerr: ", r.err);
  REQUIRE(r.exit_code == 0);
}

bool Marker(const std::string& root, const std::string& id) {
  struct stat st;
  return ::stat((root + "/" + id).c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

// The repos of `status --json` (one document).
json StatusRepos(const std::map<std::string, std::string>& env) {
  auto docs = JsonLines(RunCli({"status", "--json"}, env).out);
  REQUIRE(docs.size() == 1);
  return docs[0];
}

json StatusOf(const std::map<std::string, std::string>& env, const std::string& repo) {
  json doc = StatusRepos(env);
  for (const auto& j : doc["repos"])
    if (j.value("repo", "") == repo) return j;
  return json();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool CheckIndexHasId(const std::string& root, const std::string& id) {
  json index = json::parse(Slurp(root + "/.modelsync/models.json"));
  for (const auto& m : index["models"])
    if (m["model_id"] == id) return m["loadable"].get<bool>();
  return false;
}

}  // namespace

TEST_CASE("1. one owner per marker: a twin repo is refused before any byte, remove touches only its own") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  Ok(env, {"pull", kModel, "--quiet"});
  REQUIRE(Marker(root.path(), kMarker));
  uint64_t cdn = hub.CdnRequests();
  auto twin = Run(env, {"pull", kTwin});
  INFO(twin.err);
  CHECK(twin.exit_code == 2);
  CHECK(twin.err.find("belongs to mlx-community/Tiny-Model-4bit") != std::string::npos);
  CHECK(twin.err.find("--id") != std::string::npos);
  CHECK(hub.CdnRequests() == cdn);  // nothing fetched
  CHECK_FALSE(fs::exists(root.path() + "/models/other-org"));

  Ok(env, {"pull", kTwin, "--id", "twin", "--quiet"});
  CHECK(Marker(root.path(), "twin"));
  CHECK(Marker(root.path(), kMarker));
  Ok(env, {"remove", kTwin});
  CHECK_FALSE(Marker(root.path(), "twin"));
  CHECK(Marker(root.path(), kMarker));  // the other repo's marker is untouched
  json s = StatusOf(env, kModel);
  CHECK(s["state"] == "complete");
  CHECK(s["marker"]["state"] == "written");
  CHECK(StatusOf(env, kTwin).is_null());  // removed repos leave status
  CHECK(Run(env, {"verify"}).exit_code == 0);
  // Tracking with a taken id is refused too.
  CHECK(Run(env, {"track", kTwin}).exit_code == 2);
}

TEST_CASE("2. an --id change moves the marker; the watch list and rebuild follow it") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  Ok(env, {"pull", kModel, "--quiet"});
  Ok(env, {"track", kModel});
  Ok(env, {"pull", kModel, "--id", "my-tiny", "--quiet"});
  CHECK(Marker(root.path(), "my-tiny"));
  CHECK_FALSE(Marker(root.path(), kMarker));
  auto list = Run(env, {"list", "--json"});
  CHECK(list.out.find("\"model_id\":\"my-tiny\"") != std::string::npos);
  // A pull without --id keeps the id the repo owns now.
  Ok(env, {"pull", kModel, "--quiet"});
  CHECK(Marker(root.path(), "my-tiny"));
  CHECK_FALSE(Marker(root.path(), kMarker));
  Ok(env, {"sync"});
  CHECK(Marker(root.path(), "my-tiny"));
  CHECK_FALSE(Marker(root.path(), kMarker));
  auto rb = Run(env, {"rebuild", "--json"});
  INFO(rb.out, rb.err);
  CHECK(rb.exit_code == 0);
  CHECK(Marker(root.path(), "my-tiny"));
  CHECK(rb.out.find("stray_marker_removed") == std::string::npos);
  auto log = Run(env, {"log"}).out;
  CHECK(log.find("ModelIdAssigned") != std::string::npos);
  // The old id is free again.
  Ok(env, {"pull", kTwin, "--quiet"});
  CHECK(Marker(root.path(), kMarker));
}

TEST_CASE("3. a filter that keeps no weights syncs the files but writes no marker") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  auto r = Run(env, {"pull", kModel, "--exclude", "*.safetensors"});
  INFO(r.out, r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("--exclude '*.safetensors'") != std::string::npos);
  CHECK(r.out.find("no marker") != std::string::npos);
  CHECK_FALSE(Marker(root.path(), kMarker));
  CHECK(fs::exists(root.path() + "/models/" + std::string(kModel) + "/config.json"));
  json s = StatusOf(env, kModel);
  CHECK(s["state"] == "complete");
  CHECK(s["marker"]["written"] == false);
  CHECK(s["marker"]["reason"].get<std::string>().find("--exclude") != std::string::npos);
  // No work on an unchanged pull, and rebuild agrees.
  auto again = Run(env, {"pull", kModel, "--exclude", "*.safetensors", "--json"});
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("\"up_to_date\":true") != std::string::npos);
  CHECK(Run(env, {"rebuild"}).exit_code == 0);
  CHECK_FALSE(Marker(root.path(), kMarker));
  CHECK(Run(env, {"verify"}).exit_code == 0);
  // Dropping the filter gets the model and its marker.
  Ok(env, {"pull", kModel, "--quiet"});
  CHECK(Marker(root.path(), kMarker));

  TempDir root2;
  auto env2 = hub.Env(root2.path());
  auto none = Run(env2, {"pull", kModel, "--include", "nomatch*"});
  INFO(none.out, none.err);
  CHECK(none.exit_code == 0);
  CHECK(none.out.find("keeps 0 of") != std::string::npos);
  CHECK_FALSE(Marker(root2.path(), kMarker));
}

TEST_CASE("4. rebuild never writes a marker pull refused; --any-format exits 0 and says why") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  auto r = Run(env, {"pull", fixtures::kGgufRepo, "--any-format"});
  INFO(r.out, r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("no marker") != std::string::npos);
  CHECK_FALSE(Marker(root.path(), "Tiny-GGUF"));
  auto rb = Run(env, {"rebuild"});
  INFO(rb.out, rb.err);
  CHECK(rb.exit_code == 0);
  CHECK_FALSE(Marker(root.path(), "Tiny-GGUF"));
  // A marker planted by hand is reported by status and verify, and rebuild removes it.
  { std::ofstream(root.path() + "/Tiny-GGUF"); }
  CHECK(Run(env, {"status"}).exit_code == 3);
  auto v = Run(env, {"verify"});
  CHECK(v.exit_code == 3);
  CHECK(v.out.find("never wrote it") != std::string::npos);
  Ok(env, {"verify", "--repair"});
  CHECK_FALSE(Marker(root.path(), "Tiny-GGUF"));
  CHECK(Run(env, {"verify"}).exit_code == 0);
}

TEST_CASE("5. the user's files: kept through pull, update, repair and remove; matching bytes adopted") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  std::string repo = fixtures::kVersionsRepo;
  std::string dir = root.path() + "/models/" + repo;
  Ok(env, {"pull", repo, "--revision", "v1", "--quiet"});
  { std::ofstream(dir + "/my-notes.txt") << "mine"; }
  Ok(env, {"pull", repo, "--quiet"});  // v1 -> v2 rebuilds the directory
  CHECK(Slurp(dir + "/my-notes.txt") == "mine");
  // verify --repair of a damaged file keeps an extra file, as its help says.
  { std::ofstream(dir + "/extra.txt") << "extra"; }
  std::string readme = dir + "/README.md";
  fs::permissions(readme, fs::perms::owner_write, fs::perm_options::add);
  { std::ofstream(readme, std::ios::app) << "x"; }
  CHECK(Run(env, {"verify"}).exit_code == 3);
  Ok(env, {"verify", "--repair"});
  CHECK(Slurp(dir + "/extra.txt") == "extra");
  CHECK(Slurp(dir + "/my-notes.txt") == "mine");
  CHECK(Run(env, {"verify"}).exit_code == 0);
  // remove keeps them (and says so), the rest goes.
  auto rm = Run(env, {"remove", repo});
  INFO(rm.out, rm.err);
  CHECK(rm.exit_code == 0);
  CHECK(rm.out.find("my-notes.txt") != std::string::npos);
  CHECK(Slurp(dir + "/my-notes.txt") == "mine");
  CHECK_FALSE(fs::exists(readme));

  // Files already there with the right bytes are adopted, not downloaded; one with other
  // bytes at a path the revision needs is moved aside, not deleted.
  TempDir root2;
  auto env2 = hub.Env(root2.path());
  std::string dir2 = root2.path() + "/models/" + kModel;
  fs::create_directories(dir2);
  json rj = hub.fixtures.RepoJson(kModel);
  std::string commit = rj["refs"]["main"].get<std::string>();
  for (const auto& f : rj["commits"][commit]["files"]) {
    std::string p = f["path"].get<std::string>();
    fs::create_directories(fs::path(dir2 + "/" + p).parent_path());
    fs::copy_file(hub.fixtures.ObjectPath(kModel, "main", p), dir2 + "/" + p);
  }
  { std::ofstream(dir2 + "/config.json") << "{\"edited\": true}"; }
  REQUIRE(hub.emu.Reset().ok());
  auto r = Run(env2, {"pull", kModel, "--json"});
  INFO(r.out, r.err);
  CHECK(r.exit_code == 0);
  uint64_t config_size = fs::file_size(hub.fixtures.ObjectPath(kModel, "main", "config.json"));
  CHECK(hub.CdnBytes() + 0 <= config_size);  // only config.json's bytes came over the network
  CHECK(r.out.find("\"event\":\"kept\"") != std::string::npos);
  std::string kept = root2.path() + "/.modelsync/kept/" + kModel + "/config.json";
  CHECK(Slurp(kept) == "{\"edited\": true}");
  CHECK(Marker(root2.path(), kMarker));
  CHECK(Run(env2, {"verify"}).exit_code == 0);
}

TEST_CASE("6. offline answers only from the log") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  Ok(env, {"pull", kModel, "--quiet"});
  Ok(env, {"track", kModel});
  auto off = env;
  off["HF_HUB_OFFLINE"] = "1";
  auto unknown = Run(off, {"pull", kModel, "--revision", "v1"});
  INFO(unknown.out, unknown.err);
  CHECK(unknown.exit_code == 7);
  CHECK(unknown.err.find("never resolved") != std::string::npos);
  auto known = Run(off, {"pull", kModel});
  CHECK(known.exit_code == 0);
  CHECK(known.out.find("offline") != std::string::npos);
  auto sync = Run(off, {"sync"});
  INFO(sync.out, sync.err);
  CHECK(sync.exit_code == 7);
  CHECK(sync.out.find("not checked (offline)") != std::string::npos);
  CHECK(sync.out.find("up to date") == std::string::npos);
  auto st = Run(off, {"status"});
  CHECK(st.out.find("not checked against the hub (offline)") != std::string::npos);
}

TEST_CASE("7. status tells the truth: never completed, removed, errors cleared, updates, bad root") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  CHECK(Run(env, {"pull", "mlx-community/no-such-model"}).exit_code == 8);
  json bad = StatusOf(env, "mlx-community/no-such-model");
  CHECK(bad["state"] == "failed");
  CHECK(bad["never_completed"] == true);
  Ok(env, {"remove", "mlx-community/no-such-model"});
  CHECK(StatusOf(env, "mlx-community/no-such-model").is_null());
  CHECK(Run(env, {"remove", "mlx-community/never-seen"}).exit_code == 8);

  // An update available reads as one, not as missing files.
  std::string repo = fixtures::kVersionsRepo;
  Ok(env, {"pull", repo, "--revision", "previous", "--quiet"});
  {
    // The hub moves branch "previous" to v2; a diff of the tracked ref records the resolve.
    std::string path = hub.fixtures.path() + "/" + repo + "/repo.json";
    json rj = json::parse(Slurp(path));
    rj["refs"]["previous"] = rj["refs"]["main"];
    std::ofstream(path) << rj.dump();
    REQUIRE(hub.emu.Reload().ok());
  }
  Ok(env, {"diff", repo, "--revision", "previous"});
  json s = StatusOf(env, repo);
  INFO(s.dump());
  CHECK(s["update_available"] == true);
  CHECK(s["files_done"] == s["files_total"]);
  CHECK(s["update_files"].get<int>() > 0);
  auto text = Run(env, {"status", repo}).out;
  CHECK(text.find("update available") != std::string::npos);

  // A later success clears the last error, also when it had nothing to do.
  auto quick = env;
  quick["MODELSYNC_HUB_ATTEMPTS"] = "1";
  for (int i = 0; i < 2; ++i) {
    hub.emu.Stop();
    CHECK(Run(quick, {"pull", repo, "--revision", "previous"}).exit_code != 0);
    CHECK(StatusOf(env, repo).contains("last_error"));
    REQUIRE(hub.emu.Start().ok());
    Ok(env, {"pull", repo, "--revision", "previous", "--quiet"});
    CHECK_FALSE(StatusOf(env, repo).contains("last_error"));
  }
  CHECK(Run(env, {"log"}).out.find("SyncCompleted") != std::string::npos);

  // A mistyped --root is a bad argument, not "no models yet".
  auto typo = Run(env, {"status", "--root", root.path() + "/nope"});
  CHECK(typo.exit_code == 2);
  CHECK(typo.err.find("check --root") != std::string::npos);
}

TEST_CASE("pull never truncates a user's file named like the model id") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  { std::ofstream(root.path() + "/notes") << "my notes"; }
  auto r = Run(env, {"pull", kModel, "--id", "notes"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("never overwrites") != std::string::npos);
  CHECK(Slurp(root.path() + "/notes") == "my notes");
  CHECK(hub.CdnRequests() == 0);
}

TEST_CASE("ls and models.json list the installed models, the index equals the log's view") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  Ok(env, {"pull", kModel, "--quiet"});
  Ok(env, {"pull", kTwin, "--id", "twin", "--exclude", "*.safetensors", "--quiet"});
  auto ls = Run(env, {"ls", "--json"});
  INFO(ls.out, ls.err);
  CHECK(ls.exit_code == 0);
  auto docs = JsonLines(ls.out);
  REQUIRE(docs.size() == 1);  // one document
  const json& lines = docs[0]["models"];
  REQUIRE(lines.size() == 2);
  json index = json::parse(Slurp(root.path() + "/.modelsync/models.json"));
  REQUIRE(index["models"].size() == 2);
  for (const auto& m : index["models"]) {
    bool found = false;
    for (const auto& l : lines)
      if (l.value("model_id", "") == m["model_id"]) {
        found = true;
        CHECK(l["repo"] == m["repo"]);
        CHECK(l["commit"] == m["commit"]);
        CHECK(l["loadable"] == m["loadable"]);
        CHECK(m["loadable"].get<bool>() == Marker(root.path(), m["model_id"]));
      }
    CHECK(found);
  }
  Ok(env, {"remove", kModel});
  index = json::parse(Slurp(root.path() + "/.modelsync/models.json"));
  CHECK(index["models"].size() == 1);
  CHECK(index["models"][0]["model_id"] == "twin");
}

// A seeded random sequence over three repos (two share a name): after every step, markers
// exist iff status says the repo owns a complete loadable model, and models.json is the log's.
TEST_CASE("random sequences keep markers, ownership and the index true") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  const std::vector<std::string> repos = {kModel, kTwin, fixtures::kVersionsRepo};
  std::mt19937 rng(20261204);
  for (int step = 0; step < 30; ++step) {
    const std::string& repo = repos[rng() % repos.size()];
    int op = static_cast<int>(rng() % 7);
    std::vector<std::string> args;
    switch (op) {
      case 0: case 1: args = {"pull", repo, "--quiet"}; break;
      case 2: args = {"pull", repo, "--id", "id-" + std::to_string(rng() % 3), "--quiet"}; break;
      case 3: args = {"remove", repo}; break;
      case 4: args = {"rebuild"}; break;
      case 5: args = {"verify", "--repair"}; break;
      default: args = {"gc"}; break;
    }
    auto r = RunCli(args, env);
    INFO("step ", step, ": ", args[0], " ", args.size() > 1 ? args[1] : "", " -> ", r.exit_code,
         "\n", r.out, r.err);
    CHECK((r.exit_code == 0 || r.exit_code == 2 || r.exit_code == 8));
    // Invariants.
    std::set<std::string> expected;
    json doc = StatusRepos(env);
    for (const auto& m : doc["stray_markers"]) FAIL_CHECK("stray marker " << m.dump());
    for (const auto& j : doc["repos"]) {
      CHECK(j["marker"]["state"] != "missing");
      CHECK(j["marker"]["state"] != "unexpected");
      if (j["marker"]["written"].get<bool>()) {
        CHECK(j["state"] == "complete");
        CHECK(expected.insert(j["model_id"].get<std::string>()).second);  // one owner
      }
    }
    std::set<std::string> present;
    for (const auto& e : fs::directory_iterator(root.path()))
      if (e.is_regular_file() && fs::file_size(e.path()) == 0 &&
          e.path().filename().string()[0] != '.')
        present.insert(e.path().filename().string());
    CHECK(present == expected);
    if (fs::exists(root.path() + "/.modelsync/models.json")) {
      json index = json::parse(Slurp(root.path() + "/.modelsync/models.json"));
      std::set<std::string> loadable;
      for (const auto& m : index["models"])
        if (m["loadable"].get<bool>()) loadable.insert(m["model_id"].get<std::string>());
      CHECK(loadable == expected);
    }
  }
}

TEST_CASE("an edit through a hard link: verify names every model that shares the blob, repair fixes all") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  Ok(env, {"pull", kModel, "--quiet"});
  Ok(env, {"pull", kTwin, "--id", "twin", "--quiet"});
  std::string a = root.path() + "/models/" + std::string(kModel) + "/tokenizer_config.json";
  std::string b = root.path() + "/models/" + std::string(kTwin) + "/tokenizer_config.json";
  REQUIRE(Slurp(a) == Slurp(b));
  struct stat sa;
  REQUIRE(::stat(a.c_str(), &sa) == 0);
  CHECK((sa.st_mode & 0222) == 0);  // read-only: an edit needs a chmod first
  fs::permissions(a, fs::perms::owner_write, fs::perm_options::add);
  { std::ofstream(a, std::ios::app) << " "; }
  CHECK(Slurp(a) == Slurp(b));  // the edit spread through the shared blob
  auto v = Run(env, {"verify", kModel});
  INFO(v.out, v.err);
  CHECK(v.exit_code == 3);
  CHECK(v.out.find("also other-org/Tiny-Model-4bit/tokenizer_config.json") != std::string::npos);
  Ok(env, {"verify", kModel, "--repair"});
  CHECK(Run(env, {"verify"}).exit_code == 0);
  CHECK(Slurp(a) == Slurp(hub.fixtures.ObjectPath(kModel, "main", "tokenizer_config.json")));
  CHECK(Slurp(b) == Slurp(hub.fixtures.ObjectPath(kTwin, "main", "tokenizer_config.json")));
}

TEST_CASE("add-local: the same ownership and loadability rules") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  Ok(env, {"pull", kModel, "--quiet"});
  std::string src = root.path() + "/models/" + std::string(kModel);
  auto taken = Run(env, {"add-local", src, "--id", kMarker});
  INFO(taken.out, taken.err);
  CHECK(taken.exit_code == 2);
  CHECK(taken.err.find("belongs to") != std::string::npos);
  Ok(env, {"add-local", src, "--id", "mine"});
  CHECK(Marker(root.path(), "mine"));
  CHECK(CheckIndexHasId(root.path(), "mine"));
}

// Where the file system makes reflinks (btrfs here, on a loop device in a private mount
// namespace), model files are reflinked copies of their blobs: an edit of one model's file
// (after a chmod) stays in it, and verify --repair restores it from the intact blob with no
// download. On ext4 and tmpfs they are read-only hard links (the case above).
TEST_CASE("on btrfs model files are reflinks: an edit stays in one model, repair needs no download") {
  Hub hub;
  TempDir base;
  std::string img = base.path() + "/btrfs.img", mnt = base.path() + "/mnt", logs = base.path();
  fs::create_directories(mnt);
  { std::ofstream(img).close(); }
  fs::resize_file(img, 256u << 20);
  REQUIRE(std::system(("mkfs.btrfs -q '" + img + "' > /dev/null 2>&1").c_str()) == 0);
  std::string root = mnt + "/root";
  std::string ms = "MODELSYNC_ROOT='" + root + "' HF_ENDPOINT='" + hub.emu.hub_url() + "' '" +
                   CliPath() + "' ";
  auto step = [&](const std::string& name, const std::string& args) {
    return ms + args + " > '" + logs + "/" + name + "' 2>&1; echo \\$? > '" + logs + "/" + name +
           ".rc'; ";
  };
  std::string a = root + "/models/" + std::string(kModel) + "/tokenizer_config.json";
  std::string b = root + "/models/" + std::string(kTwin) + "/tokenizer_config.json";
  std::string script =
      "mount -o loop '" + img + "' '" + mnt + "' || exit 99; " +
      step("pull1", std::string("pull ") + kModel + " --quiet") +
      step("pull2", std::string("pull ") + kTwin + " --id twin --quiet") +
      "stat -c %h '" + a + "' > '" + logs + "/nlink'; " + "cp '" + b + "' '" + logs + "/b.before'; " +
      "chmod u+w '" + a + "' && echo ' ' >> '" + a + "'; " +
      "cp '" + b + "' '" + logs + "/b.after'; " +
      step("verify1", "verify --json") + step("repair", "verify --repair --json") +
      step("verify2", "verify") + step("pull3", std::string("pull ") + kModel + " --json") +
      "cp '" + a + "' '" + logs + "/a.after'; umount '" + mnt + "'";
  int rc = std::system(("unshare -m sh -c \"" + script + "\"").c_str());
  REQUIRE(WIFEXITED(rc));
  REQUIRE(WEXITSTATUS(rc) != 99);
  auto rc_of = [&](const std::string& n) { return Slurp(logs + "/" + n + ".rc"); };
  INFO("verify1: ", Slurp(logs + "/verify1"), "\nrepair: ", Slurp(logs + "/repair"),
       "\npull3: ", Slurp(logs + "/pull3"));
  CHECK(rc_of("pull1") == "0\n");
  CHECK(rc_of("pull2") == "0\n");
  CHECK(rc_of("verify1") == "3\n");
  CHECK(Slurp(logs + "/verify1").find(kModel) != std::string::npos);
  CHECK(rc_of("repair") == "0\n");
  if (std::string(platform::Name()) == "posix") {
    // No reflinks in the portable build (docs/PLATFORM.md CloneFile): hard links, so the edit
    // reached the blob and the twin, verify names both, and repair downloads the file again.
    CHECK(Slurp(logs + "/nlink") == "3\n");
    CHECK(Slurp(logs + "/b.after") != Slurp(logs + "/b.before"));
    CHECK(Slurp(logs + "/verify1").find("\"repo\":\"other-org/Tiny-Model-4bit\"") != std::string::npos);
    CHECK(Slurp(logs + "/repair").find("\"bytes_fetched\":0") == std::string::npos);
  } else {
    CHECK(Slurp(logs + "/nlink") == "1\n");  // a reflink, not a hard link
    CHECK(Slurp(logs + "/b.after") == Slurp(logs + "/b.before"));  // the edit did not spread
    CHECK(Slurp(logs + "/verify1").find("\"repo\":\"other-org/Tiny-Model-4bit\"") == std::string::npos);
    CHECK(Slurp(logs + "/repair").find("\"bytes_fetched\":0") != std::string::npos);
  }
  CHECK(rc_of("verify2") == "0\n");
  CHECK(Slurp(logs + "/pull3").find("\"up_to_date\":true") != std::string::npos);
  CHECK(Slurp(logs + "/a.after") == Slurp(hub.fixtures.ObjectPath(kModel, "main", "tokenizer_config.json")));
}
