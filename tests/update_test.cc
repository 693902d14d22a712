// Updates end to end: the real modelsync binary against the real emulator over loopback.
// v1 -> v2 fetches only what changed, the switch is atomic under SIGKILL, shared content and
// renames cost nothing, a branch moving mid-sync does not mix revisions, offline works.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "base/fs.h"
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

constexpr const char* kSharedRepo = "fixtures/shared";
constexpr const char* kMarker = "versions";

using Tree = std::map<std::string, std::string>;  // path -> sha256

fixtures::FixtureOptions Options(uint64_t weights) {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = weights;
  fo.only = {"versions"};
  return fo;
}

// fixtures/shared: c1 is the versions repo at main (a loadable MLX model: same weights,
// tokenizer, index, .gitattributes) with its own README.md and config.json (one extra key);
// c2 moves README.md to docs/README.md (same bytes). main -> c2, tag c1 -> c1.
void MakeSharedRepo(const FixtureDir& fx) {
  json rj = fx.RepoJson(fixtures::kVersionsRepo);
  std::string main_commit = rj["refs"]["main"].get<std::string>();
  fixtures::RepoBuilder b(fx.path(), kSharedRepo);
  const std::string readme = "# a repo that shares its weights\n";
  for (const auto& f : rj["commits"][main_commit]["files"]) {
    std::string path = f["path"].get<std::string>();
    auto content = ReadFile(fx.ObjectPath(fixtures::kVersionsRepo, "main", path));
    REQUIRE(content.ok());
    if (path == "README.md") {
      REQUIRE(b.AddFile(path, readme).ok());
    } else if (path == "config.json") {
      json cfg = json::parse(*content);
      cfg["_name_or_path"] = kSharedRepo;
      REQUIRE(b.AddFile(path, cfg.dump(4) + "\n").ok());
    } else {
      REQUIRE(b.AddFile(path, *content).ok());
    }
  }
  auto c1 = b.Commit("c1");
  REQUIRE(c1.ok());
  b.RemoveFile("README.md");
  REQUIRE(b.AddFile("docs/README.md", readme).ok());
  auto c2 = b.Commit("c2");
  REQUIRE(c2.ok());
  b.SetRef("main", *c2);
  b.SetRef("c1", *c1);
  REQUIRE(b.Write().ok());
}

struct Hub {
  explicit Hub(uint64_t weights = 256u << 10, bool shared = false)
      : fixtures(Options(weights)),
        emu(EmulatorProcess::Options{fixtures.path(), "", 1000, false, {}}) {
    if (shared) MakeSharedRepo(fixtures);
    REQUIRE(emu.Start().ok());
  }
  std::map<std::string, std::string> Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root},        {"HF_ENDPOINT", emu.hub_url()},
            {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
            {"HF_HOME", root + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  }
  // Commit sha of repo@ref from repo.json.
  std::string Commit(const std::string& repo, const std::string& ref) const {
    return fixtures.RepoJson(repo)["refs"][ref].get<std::string>();
  }
  // The expected tree of repo@ref: path -> sha256 (the object name is the sha256).
  Tree Expected(const std::string& repo, const std::string& ref) const {
    json rj = fixtures.RepoJson(repo);
    std::string commit = rj["refs"].contains(ref) ? rj["refs"][ref].get<std::string>() : ref;
    Tree t;
    for (const auto& f : rj["commits"][commit]["files"])
      t[f["path"].get<std::string>()] = HashFileHex(
          HashKind::kSha256, fixtures.ObjectPath(repo, ref, f["path"].get<std::string>()));
    return t;
  }
  std::map<std::string, uint64_t> Sizes(const std::string& repo, const std::string& ref) const {
    json rj = fixtures.RepoJson(repo);
    std::map<std::string, uint64_t> s;
    for (const auto& f : rj["commits"][Commit(repo, ref)]["files"])
      s[f["path"].get<std::string>()] = f["size"].get<uint64_t>();
    return s;
  }
  // File body bytes served (hub resolve + CDN), API traffic left out; and those of paths
  // containing `part`.
  uint64_t FileBytes(const std::string& part = "") {
    json st = *emu.Stats();
    uint64_t n = 0;
    for (auto& [path, per] : st["paths"].items()) {
      if (path.rfind("/api/", 0) == 0) continue;
      if (!part.empty() && path.find(part) == std::string::npos) continue;
      for (auto& [listener, c] : per.items()) n += c["body_bytes"].get<uint64_t>();
    }
    return n;
  }
  int Requests() {
    json st = *emu.Stats();
    return st["hub"]["requests"].get<int>() + st["cdn"]["requests"].get<int>();
  }
  FixtureDir fixtures;
  EmulatorProcess emu;
};

Tree OnDisk(const std::string& dir) {
  Tree t;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return t;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      t[fs::relative(e.path(), dir).string()] = HashFileHex(HashKind::kSha256, e.path().string());
  return t;
}

std::string ModelDir(const std::string& root, const std::string& repo) {
  return root + "/models/" + repo;
}

// The posix build swaps revisions with two renames and takes the marker away for the swap
// (docs/PLATFORM.md "The revision swap without RENAME_EXCHANGE"); linux never does either.
bool RenameSwap() { return std::string(platform::Name()) == "posix"; }

// Where the two-rename swap sets the old revision aside: models/<org>/.<name>.old.
std::string SetAsideDir(const std::string& root, const std::string& repo) {
  auto slash = repo.find('/');
  return root + "/models/" + repo.substr(0, slash) + "/." + repo.substr(slash + 1) + ".old";
}

json StatusOf(const std::map<std::string, std::string>& env, const std::string& repo) {
  auto r = RunCli({"status", repo, "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  json doc = json::parse(r.out);
  REQUIRE(doc["repos"].size() == 1);
  return doc["repos"][0];
}

// Bytes of repo@to's distinct content that repo@from does not have.
uint64_t NewBytes(Hub& hub, const std::string& repo, const std::string& from,
                  const std::string& to) {
  Tree a = hub.Expected(repo, from), b = hub.Expected(repo, to);
  auto sizes = hub.Sizes(repo, to);
  std::set<std::string> old_ids, counted;
  for (auto& [p, h] : a) old_ids.insert(h);
  uint64_t n = 0;
  for (auto& [p, h] : b)
    if (!old_ids.count(h) && counted.insert(h).second) n += sizes[p];
  return n;
}

}  // namespace

TEST_CASE("v1 -> v2 fetches only the changed files, keeps the marker, ends byte-identical") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  auto r1 = RunCli({"pull", fixtures::kVersionsRepo, "--revision", "v1", "--quiet"}, env);
  INFO(r1.err);
  REQUIRE(r1.exit_code == 0);
  std::string dir = ModelDir(root.path(), fixtures::kVersionsRepo);
  REQUIRE(OnDisk(dir) == hub.Expected(fixtures::kVersionsRepo, "v1"));
  const uint64_t changed = NewBytes(hub, fixtures::kVersionsRepo, "v1", "main");
  REQUIRE(changed > 0);

  // diff tells what the update will do.
  auto d = RunCli({"diff", fixtures::kVersionsRepo, "--json"}, env);
  INFO(d.err);
  REQUIRE(d.exit_code == 0);
  json dj = json::parse(d.out);
  CHECK(dj["modified"] == 2);
  CHECK(dj["added"] == 1);
  CHECK(dj["removed"] == 1);
  CHECK(dj["renamed"] == 0);
  CHECK(dj["fetch_bytes"].get<uint64_t>() == changed);
  CHECK(dj["free_bytes"].get<uint64_t>() > 0);
  CHECK(dj["to_commit"] == hub.Commit(fixtures::kVersionsRepo, "main"));
  auto dt = RunCli({"diff", fixtures::kVersionsRepo}, env);
  CHECK(dt.exit_code == 0);
  CHECK(dt.out.find("D notes.txt") != std::string::npos);
  CHECK(dt.out.find("A generation_config.json") != std::string::npos);

  REQUIRE(hub.emu.Reset().ok());
  std::atomic<bool> done{false};
  std::atomic<int> polls{0}, missing{0};
  std::thread poller([&] {
    while (!done) {
      if (!fs::exists(root.path() + "/" + kMarker)) ++missing;
      ++polls;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  auto r2 = RunCli({"pull", fixtures::kVersionsRepo, "--json"}, env);
  done = true;
  poller.join();
  INFO(r2.err);
  REQUIRE(r2.exit_code == 0);
  CHECK(polls > 10);
  if (RenameSwap())
    CHECK(missing < polls);  // "not ready" for the swap only; back once v2 is active
  else
    CHECK(missing == 0);
  CHECK(fs::exists(root.path() + "/" + kMarker));
  CHECK(OnDisk(dir) == hub.Expected(fixtures::kVersionsRepo, "main"));
  CHECK_FALSE(fs::exists(dir + "/notes.txt"));
  CHECK(hub.FileBytes("model.safetensors") == 0);
  CHECK(hub.FileBytes() == changed);
  json st = StatusOf(env, fixtures::kVersionsRepo);
  CHECK(st["state"] == "complete");
  CHECK(st["active_ref"] == "main");
  CHECK(st["active_commit"] == hub.Commit(fixtures::kVersionsRepo, "main"));

  // Back to the tag: all content is local, so zero file bytes.
  REQUIRE(hub.emu.Reset().ok());
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--revision", "v1", "--quiet"}, env).exit_code ==
          0);
  CHECK(OnDisk(dir) == hub.Expected(fixtures::kVersionsRepo, "v1"));
  CHECK(hub.FileBytes() == 0);
  // And a 40-hex commit pins it too.
  std::string v2 = hub.Commit(fixtures::kVersionsRepo, "main");
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--revision", v2, "--quiet"}, env).exit_code ==
          0);
  CHECK(OnDisk(dir) == hub.Expected(fixtures::kVersionsRepo, "main"));
  CHECK(StatusOf(env, fixtures::kVersionsRepo)["active_ref"] == v2);
}

TEST_CASE(
    "SIGKILL at seeded random moments of an update: wholly v1 or wholly v2, rerun ends at v2") {
  Hub hub;
  TempDir work;
  std::string tmpl = work.path() + "/template";
  auto env = hub.Env(tmpl);
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--revision", "v1", "--quiet"}, env).exit_code ==
          0);
  const Tree v1 = hub.Expected(fixtures::kVersionsRepo, "v1");
  const Tree v2 = hub.Expected(fixtures::kVersionsRepo, "main");
  // The changed small files come slowly, so the update lasts a few hundred ms.
  const json slow = json::array({{{"match", "/resolve/"},
                                  {"listener", "hub"},
                                  {"latency_ms", 150},
                                  {"throttle_bps", 20000}}});
  auto fresh = [&](const std::string& name) {
    std::string r = work.path() + "/" + name;
    std::string cmd = "cp -a '" + tmpl + "' '" + r + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);  // -a keeps the blob <-> model hard links
    return r;
  };
  REQUIRE(hub.emu.SetFaults(slow).ok());
  std::string probe = fresh("probe");
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--quiet"}, hub.Env(probe)).exit_code == 0);
  int span_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  REQUIRE(OnDisk(ModelDir(probe, fixtures::kVersionsRepo)) == v2);
  std::mt19937 rng(5050);
  int at_v1 = 0, at_v2 = 0, killed = 0;
  // At least 20 kills that land while the update runs (a sleep past its end kills nothing).
  // A run that ends before its kill shortens the span (the machine may have been busier
  // during the probe).
  for (int i = 0; i < 60 && killed < 20; ++i) {
    std::string root = fresh("r" + std::to_string(i));
    auto renv = hub.Env(root);
    REQUIRE(hub.emu.SetFaults(slow).ok());
    pid_t pid = SpawnCli({"pull", fixtures::kVersionsRepo, "--quiet"}, renv);
    // Half uniform over the update, half in its last 80 ms (the swap and the activation).
    int at = i % 2 == 0 ? static_cast<int>(rng() % span_ms)
                        : std::max(0, span_ms - 1 - static_cast<int>(rng() % 80));
    std::this_thread::sleep_for(std::chrono::milliseconds(at));
    ::kill(pid, SIGKILL);
    if (WaitExit(pid) == 128 + SIGKILL) ++killed;
    else span_ms = std::max(40, std::min(span_ms, at));
    Tree t = OnDisk(ModelDir(root, fixtures::kVersionsRepo));
    bool whole = t == v1 || t == v2;
    // Killed between the two renames (posix): no directory, the old revision whole aside.
    bool aside = RenameSwap() && t.empty() &&
                 OnDisk(SetAsideDir(root, fixtures::kVersionsRepo)) == v1;
    CHECK_MESSAGE((whole || aside), "kill " << i << ": the model directory mixes revisions");
    if (RenameSwap())  // the marker may be gone for the swap, never over a missing model
      CHECK_MESSAGE((whole || !fs::exists(root + "/" + kMarker)),
                    "kill " << i << ": marker without its model");
    else
      CHECK_MESSAGE(fs::exists(root + "/" + kMarker), "kill " << i << ": marker gone");
    (t == v2 ? at_v2 : at_v1)++;
    REQUIRE(hub.emu.SetFaults(json::array()).ok());
    auto again = RunCli({"pull", fixtures::kVersionsRepo, "--quiet"}, renv);
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(OnDisk(ModelDir(root, fixtures::kVersionsRepo)) == v2);
    CHECK(fs::exists(root + "/" + kMarker));
    fs::remove_all(root);
  }
  MESSAGE("update span " << span_ms << " ms, killed " << killed << ", found v1 " << at_v1 << ", v2 "
                         << at_v2);
  CHECK(killed >= 20);
}

TEST_CASE("content held by another repo, and a renamed file, cost zero bytes") {
  Hub hub(256u << 10, /*shared=*/true);
  TempDir root;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--quiet"}, env).exit_code == 0);
  REQUIRE(hub.emu.Reset().ok());
  auto r = RunCli({"pull", kSharedRepo, "--revision", "c1", "--quiet"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::string dir = ModelDir(root.path(), kSharedRepo);
  CHECK(OnDisk(dir) == hub.Expected(kSharedRepo, "c1"));
  CHECK(hub.FileBytes("model.safetensors") == 0);
  auto sizes = hub.Sizes(kSharedRepo, "c1");
  // Everything but README.md and config.json is content the versions repo already brought.
  CHECK(hub.FileBytes() == sizes["README.md"] + sizes["config.json"]);

  auto d = RunCli({"diff", kSharedRepo, "--json"}, env);
  REQUIRE(d.exit_code == 0);
  json dj = json::parse(d.out);
  CHECK(dj["renamed"] == 1);
  CHECK(dj["fetch_bytes"] == 0);
  REQUIRE(hub.emu.Reset().ok());
  REQUIRE(RunCli({"pull", kSharedRepo, "--quiet"}, env).exit_code == 0);
  CHECK(OnDisk(dir) == hub.Expected(kSharedRepo, "main"));
  CHECK_FALSE(fs::exists(dir + "/README.md"));
  CHECK(fs::exists(dir + "/docs/README.md"));
  CHECK(hub.FileBytes() == 0);
}

TEST_CASE("a branch moving mid-sync: the result is the first commit; the next pull moves") {
  Hub hub(3u << 20);
  TempDir root;
  auto env = hub.Env(root.path());
  const std::string v1 = hub.Commit(fixtures::kVersionsRepo, "v1");
  const std::string v2 = hub.Commit(fixtures::kVersionsRepo, "main");
  REQUIRE(
      hub.emu
          .SetFaults(json::array(
              {{{"match", "model.safetensors"}, {"listener", "cdn"}, {"throttle_bps", 3'000'000}}}))
          .ok());
  pid_t pid = SpawnCli({"pull", fixtures::kVersionsRepo, "--revision", "previous", "--quiet"}, env);
  // Wait until the weights are being fetched (the resolve is over), then move the branch.
  bool fetching = false;
  for (int i = 0; i < 200 && !fetching; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    fetching = hub.FileBytes("model.safetensors") > 0;
  }
  CHECK(fetching);
  REQUIRE(hub.emu.MoveRef(fixtures::kVersionsRepo, "previous", v2).ok());
  CHECK(WaitExit(pid) == 0);
  std::string dir = ModelDir(root.path(), fixtures::kVersionsRepo);
  CHECK(OnDisk(dir) == hub.Expected(fixtures::kVersionsRepo, "v1"));
  json st = StatusOf(env, fixtures::kVersionsRepo);
  CHECK(st["active_commit"] == v1);
  CHECK(st["active_ref"] == "previous");
  CHECK(st["update_available"] == false);

  // A diff of the tracked branch records the resolve: status then shows the update.
  REQUIRE(hub.emu.SetFaults(json::array()).ok());
  auto d = RunCli({"diff", fixtures::kVersionsRepo, "--revision", "previous", "--json"}, env);
  INFO(d.err);
  REQUIRE(d.exit_code == 0);
  CHECK(json::parse(d.out)["to_commit"] == v2);
  st = StatusOf(env, fixtures::kVersionsRepo);
  CHECK(st["update_available"] == true);
  CHECK(st["target_commit"] == v2);
  CHECK(st["update_bytes"].get<uint64_t>() == NewBytes(hub, fixtures::kVersionsRepo, "v1", "main"));
  auto text = RunCli({"status", fixtures::kVersionsRepo}, env);
  CHECK(text.out.find("update available") != std::string::npos);

  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--revision", "previous", "--quiet"}, env)
              .exit_code == 0);
  CHECK(OnDisk(dir) == hub.Expected(fixtures::kVersionsRepo, "main"));
  st = StatusOf(env, fixtures::kVersionsRepo);
  CHECK(st["active_commit"] == v2);
  CHECK(st["state"] == "complete");
}

TEST_CASE("offline: HF_HUB_OFFLINE makes zero requests; with the hub gone status and diff work") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--revision", "v1", "--quiet"}, env).exit_code ==
          0);
  REQUIRE(RunCli({"pull", fixtures::kVersionsRepo, "--quiet"}, env).exit_code == 0);
  REQUIRE(hub.emu.Reset().ok());
  auto off = env;
  off["HF_HUB_OFFLINE"] = "1";
  auto st = RunCli({"status", fixtures::kVersionsRepo}, off);
  CHECK(st.exit_code == 0);
  auto dl = RunCli({"diff", fixtures::kVersionsRepo, "--json"}, off);  // offline implies --local
  INFO(dl.err);
  CHECK(dl.exit_code == 0);
  CHECK(json::parse(dl.out)["remote"] == false);
  CHECK(json::parse(dl.out)["identical"] == true);
  auto back = RunCli({"diff", fixtures::kVersionsRepo, "--revision", "v1", "--json"}, off);
  INFO(back.err);
  REQUIRE(back.exit_code == 0);
  CHECK(json::parse(back.out)["removed"] == 1);  // generation_config.json is not in v1
  CHECK(RunCli({"pull", fixtures::kVersionsRepo, "--quiet"}, off).exit_code == 0);
  CHECK(hub.Requests() == 0);

  hub.emu.Stop();
  auto st2 = RunCli({"status", fixtures::kVersionsRepo, "--json"}, env);
  REQUIRE(st2.exit_code == 0);
  CHECK(json::parse(st2.out)["repos"][0]["state"] == "complete");
  auto d2 = RunCli({"diff", fixtures::kVersionsRepo, "--local"}, env);
  INFO(d2.err);
  CHECK(d2.exit_code == 0);
  CHECK(d2.out.find("up to date") != std::string::npos);
  auto unknown = RunCli({"diff", fixtures::kVersionsRepo, "--local", "--revision", "nope"}, env);
  CHECK(unknown.exit_code == 8);
  CHECK(unknown.err.find("--local") != std::string::npos);
  CHECK(OnDisk(ModelDir(root.path(), fixtures::kVersionsRepo)) ==
        hub.Expected(fixtures::kVersionsRepo, "main"));
}
