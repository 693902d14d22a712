// Recovery from the log end to end (issue #6): rebuild, verify, gc, remove, log filters and a
// corrupt log, with the real binary against the real emulator over loopback.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/fs.h"
#include "base/hash.h"
#include "fixtures/fixtures.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = "Tiny-Model-4bit";
constexpr const char* kWeights = "model.safetensors";

struct Hub {
  Hub()
      : emu(EmulatorProcess::Options{fixtures.path(), "hf_testtoken_0123456789", 1000, false, {}}) {
    REQUIRE(emu.Start().ok());
  }
  std::map<std::string, std::string> Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root},        {"HF_ENDPOINT", emu.hub_url()},
            {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
            {"HF_HOME", root + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  }
  uint64_t CdnBytes() { return (*emu.Stats())["cdn"]["body_bytes"].get<uint64_t>(); }
  uint64_t Requests() {
    json s = *emu.Stats();
    return s["hub"]["requests"].get<uint64_t>() + s["cdn"]["requests"].get<uint64_t>();
  }
  FixtureDir fixtures{Small()};
  EmulatorProcess emu;
  static fixtures::FixtureOptions Small() {
    fixtures::FixtureOptions fo;
    fo.weights_bytes = 3u << 20;
    fo.small_files = 8;
    return fo;
  }
};

std::string ModelDir(const std::string& root) {
  return root + "/models/" + std::string(fixtures::kModelRepo);
}

// Every file of the model dir equals the fixture's and the marker exists.
std::string Compare(const Hub& hub, const std::string& root, const std::string& repo,
                    const std::string& ref, const std::string& marker) {
  json rj = hub.fixtures.RepoJson(repo);
  std::string commit = rj["refs"].contains(ref) ? rj["refs"][ref].get<std::string>() : ref;
  size_t n = 0;
  for (const auto& f : rj["commits"][commit]["files"]) {
    std::string p = f["path"].get<std::string>();
    if (HashFileHex(HashKind::kSha256, root + "/models/" + repo + "/" + p) !=
        HashFileHex(HashKind::kSha256, hub.fixtures.ObjectPath(repo, ref, p)))
      return "differs: " + p;
    ++n;
  }
  size_t on_disk = 0;
  for (auto& e : fs::recursive_directory_iterator(root + "/models/" + repo))
    if (e.is_regular_file()) ++on_disk;
  if (on_disk != n) return "extra files";
  if (!fs::is_regular_file(root + "/" + marker)) return "marker missing";
  return "";
}

// The blob a model file is a hard link to (by inode), "" if none.
std::string BlobOf(const std::string& root, const std::string& file) {
  struct stat f;
  if (::stat(file.c_str(), &f) != 0) return "";
  for (auto& e : fs::directory_iterator(root + "/.modelsync/blobs")) {
    struct stat b;
    if (::stat(e.path().c_str(), &b) == 0 && b.st_ino == f.st_ino) return e.path().string();
  }
  return "";
}

size_t CountBlobs(const std::string& root) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(root + "/.modelsync/blobs")) n += e.is_regular_file();
  return n;
}

void PullOk(const std::map<std::string, std::string>& env, std::vector<std::string> args) {
  args.insert(args.begin(), "pull");
  args.push_back("--quiet");
  auto r = RunCli(args, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE(
    "rebuild restores a deleted model dir, a deleted marker, removes a stray one; no network") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  PullOk(env, {fixtures::kModelRepo});
  REQUIRE(Compare(hub, root.path(), fixtures::kModelRepo, "main", kMarker) == "");
  REQUIRE(hub.emu.Reset().ok());

  fs::remove_all(ModelDir(root.path()));
  fs::remove(root.path() + "/" + kMarker);
  { std::ofstream(root.path() + "/Stray-Model"); }              // a marker the log never wrote
  { std::ofstream(root.path() + "/notes.md") << "user file"; }  // not a marker: kept
  auto r = RunCli({"rebuild", "--json"}, env);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Compare(hub, root.path(), fixtures::kModelRepo, "main", kMarker) == "");
  CHECK_FALSE(fs::exists(root.path() + "/Stray-Model"));
  CHECK(fs::exists(root.path() + "/notes.md"));
  CHECK(r.out.find("\"dir_rebuilt\":true") != std::string::npos);
  CHECK(r.out.find("\"stray_marker_removed\":\"Stray-Model\"") != std::string::npos);
  // Every model file is a hard link to its blob again.
  CHECK(BlobOf(root.path(), ModelDir(root.path()) + "/" + kWeights) != "");
  CHECK(hub.Requests() == 0);

  // Idempotent: the second run changes nothing (and writes no event).
  auto log1 = RunCli({"log"}, env).out;
  auto again = RunCli({"rebuild", "--json"}, env);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("\"dir_rebuilt\":false") != std::string::npos);
  CHECK(again.out.find("\"marker_written\":false") != std::string::npos);
  CHECK(RunCli({"log"}, env).out == log1);
  CHECK(RunCli({"verify"}, env).exit_code == 0);

  // Only the marker deleted: it comes back, the directory is left alone.
  fs::remove(root.path() + "/" + kMarker);
  auto m = RunCli({"rebuild", "--json"}, env);
  CHECK(m.exit_code == 0);
  CHECK(m.out.find("\"dir_rebuilt\":false") != std::string::npos);
  CHECK(m.out.find("\"marker_written\":true") != std::string::npos);
  CHECK(fs::is_regular_file(root.path() + "/" + kMarker));
  CHECK(hub.Requests() == 0);
}

TEST_CASE(
    "rebuild after the root was copied: cp -a keeps it intact, cp -r (links broken) relinks") {
  Hub hub;
  TempDir base;
  std::string a = base.path() + "/a", b = base.path() + "/b", c = base.path() + "/c";
  auto env = hub.Env(a);
  PullOk(env, {fixtures::kModelRepo});
  REQUIRE(hub.emu.Reset().ok());
  REQUIRE(std::system(("cp -a " + a + " " + b + " && cp -r " + a + " " + c).c_str()) == 0);

  auto rb = RunCli({"rebuild", "--json", "--root", b}, hub.Env(b));
  INFO(rb.err);
  CHECK(rb.exit_code == 0);
  CHECK(rb.out.find("\"dir_rebuilt\":false") != std::string::npos);

  std::string weights_c = c + "/models/" + fixtures::kModelRepo + "/" + kWeights;
  CHECK(BlobOf(c, weights_c) == "");  // cp -r copied the links into separate files
  auto rc = RunCli({"rebuild", "--json", "--root", c}, hub.Env(c));
  INFO(rc.err);
  CHECK(rc.exit_code == 0);
  CHECK(rc.out.find("\"dir_rebuilt\":true") != std::string::npos);
  CHECK(BlobOf(c, weights_c) != "");
  CHECK(Compare(hub, c, fixtures::kModelRepo, "main", kMarker) == "");
  CHECK(hub.Requests() == 0);
  CHECK(RunCli({"verify", "--root", c}, hub.Env(c)).exit_code == 0);
}

TEST_CASE("rebuild reports a lost blob, drops the marker; --fetch downloads exactly it") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  PullOk(env, {fixtures::kModelRepo});
  std::string weights = ModelDir(root.path()) + "/" + kWeights;
  uint64_t size = fs::file_size(weights);
  std::string blob = BlobOf(root.path(), weights);
  REQUIRE(blob != "");
  fs::remove(blob);
  fs::remove_all(ModelDir(root.path()));
  REQUIRE(hub.emu.Reset().ok());

  auto r = RunCli({"rebuild"}, env);
  INFO(r.out, r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.out.find(kWeights) != std::string::npos);
  CHECK(r.out.find("--fetch") != std::string::npos);
  CHECK_FALSE(fs::exists(root.path() + "/" + kMarker));
  CHECK(hub.Requests() == 0);

  auto f = RunCli({"rebuild", "--fetch", "--json"}, env);
  INFO(f.out, f.err);
  CHECK(f.exit_code == 0);
  CHECK(hub.CdnBytes() == size);
  CHECK(Compare(hub, root.path(), fixtures::kModelRepo, "main", kMarker) == "");
  CHECK(RunCli({"verify"}, env).exit_code == 0);
}

TEST_CASE("verify: clean is 0; one damaged byte is named, --repair fetches only that file") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  PullOk(env, {fixtures::kModelRepo});
  auto clean = RunCli({"verify", "--json"}, env);
  INFO(clean.out, clean.err);
  CHECK(clean.exit_code == 0);
  CHECK(clean.out.find("\"damaged\":false") != std::string::npos);

  std::string weights = ModelDir(root.path()) + "/" + kWeights;
  uint64_t size = fs::file_size(weights);
  fs::permissions(weights, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char ch = 0;
    f.read(&ch, 1);
    ch = static_cast<char>(ch ^ 0x20);
    f.seekp(1000);
    f.write(&ch, 1);
  }
  { std::ofstream(ModelDir(root.path()) + "/stray.bin") << "x"; }
  auto bad = RunCli({"verify"}, env);
  INFO(bad.out, bad.err);
  CHECK(bad.exit_code == 3);
  CHECK(bad.out.find("damaged") != std::string::npos);
  CHECK(bad.out.find(kWeights) != std::string::npos);
  CHECK(bad.out.find("extra") != std::string::npos);
  CHECK(bad.out.find("stray.bin") != std::string::npos);
  // Only that repo, by name; an unknown repo is "not found".
  CHECK(RunCli({"verify", fixtures::kModelRepo}, env).exit_code == 3);
  CHECK(RunCli({"verify", "no/such-repo"}, env).exit_code == 8);

  REQUIRE(hub.emu.Reset().ok());
  auto fix = RunCli({"verify", "--repair", "--json"}, env);
  INFO(fix.out, fix.err);
  CHECK(fix.exit_code == 0);
  CHECK(hub.CdnBytes() == size);
  auto after = RunCli({"verify", "--json"}, env);
  CHECK(after.exit_code == 0);
  CHECK(after.out.find("\"damaged\":false") != std::string::npos);
  CHECK(fs::exists(root.path() + "/" + kMarker));
  // The repair fetched the active commit, and the model is still "main" to the log: an
  // offline pull of main answers from it (it used to say main was never resolved), and
  // status names the branch.
  auto offline_env = env;
  offline_env["HF_HUB_OFFLINE"] = "1";
  auto off = RunCli({"pull", fixtures::kModelRepo}, offline_env);
  INFO(off.err);
  CHECK(off.exit_code == 0);
  auto st = RunCli({"status", "--json"}, env);
  CHECK(st.out.find("\"active_ref\":\"main\"") != std::string::npos);
}

TEST_CASE(
    "gc removes only unreferenced blobs; --dry-run removes nothing; remove then gc frees all") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  PullOk(env, {fixtures::kVersionsRepo, "--revision", "v1"});
  std::string notes = root.path() + "/models/" + fixtures::kVersionsRepo + "/notes.txt";
  REQUIRE(fs::exists(notes));
  std::string notes_blob = BlobOf(root.path(), notes);
  REQUIRE(notes_blob != "");
  PullOk(env, {fixtures::kVersionsRepo});
  REQUIRE_FALSE(fs::exists(notes));
  REQUIRE(fs::exists(notes_blob));
  size_t before = CountBlobs(root.path());

  auto dry = RunCli({"gc", "--dry-run", "--json"}, env);
  INFO(dry.out, dry.err);
  CHECK(dry.exit_code == 0);
  CHECK(dry.out.find(fs::path(notes_blob).filename().string()) != std::string::npos);
  CHECK(CountBlobs(root.path()) == before);

  auto gc = RunCli({"gc"}, env);
  INFO(gc.out, gc.err);
  CHECK(gc.exit_code == 0);
  CHECK_FALSE(fs::exists(notes_blob));
  CHECK(CountBlobs(root.path()) < before);
  CHECK(gc.out.find("snapshot written") != std::string::npos);
  CHECK(RunCli({"verify"}, env).exit_code == 0);
  CHECK(Compare(hub, root.path(), fixtures::kVersionsRepo, "main", "versions") == "");

  auto rm = RunCli({"remove", fixtures::kVersionsRepo}, env);
  INFO(rm.out, rm.err);
  CHECK(rm.exit_code == 0);
  CHECK_FALSE(fs::exists(root.path() + "/models/" + fixtures::kVersionsRepo));
  CHECK_FALSE(fs::exists(root.path() + "/versions"));
  CHECK(CountBlobs(root.path()) > 0);  // blobs stay for gc
  auto log = RunCli({"log"}, env).out;
  CHECK(log.find("RepoRemoved") != std::string::npos);
  CHECK(log.find("MarkerRemoved") != std::string::npos);
  CHECK(RunCli({"gc"}, env).exit_code == 0);
  CHECK(CountBlobs(root.path()) == 0);
  // A removed model is not rebuilt, and an unknown one is "not found".
  CHECK(RunCli({"rebuild"}, env).exit_code == 0);
  CHECK_FALSE(fs::exists(root.path() + "/models/" + fixtures::kVersionsRepo));
  CHECK(RunCli({"remove", "no/such-repo"}, env).exit_code == 8);
}

// Issue 14 defect 3: temporary files a crash leaves in blobs/ (a small-file batch's
// ".tmp-<id>", add-local's staging copy) were never removed: gc lists only valid ids.
TEST_CASE("regression: gc removes the temporary files a crash left in blobs/, and only those") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  PullOk(env, {fixtures::kVersionsRepo});
  const std::string blobs = root.path() + "/.modelsync/blobs";
  size_t before = CountBlobs(root.path());
  REQUIRE(before > 0);
  const std::vector<std::string> temps = {".tmp-" + std::string(64, 'a'), "add-local.tmp",
                                          std::string(64, '0') + ".add-local"};
  for (const auto& t : temps) REQUIRE(WriteFileAtomic(blobs + "/" + t, std::string(8192, 'x')).ok());

  auto dry = RunCli({"gc", "--dry-run", "--json"}, env);
  INFO(dry.out, dry.err);
  CHECK(dry.exit_code == 0);
  for (const auto& t : temps) {
    CHECK(dry.out.find("\"temp_file\":\"" + t + "\"") != std::string::npos);
    CHECK(fs::exists(blobs + "/" + t));
  }
  auto gc = RunCli({"gc"}, env);
  INFO(gc.out, gc.err);
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("3 temporary file(s)") != std::string::npos);
  for (const auto& t : temps) CHECK_FALSE(fs::exists(blobs + "/" + t));
  CHECK(CountBlobs(root.path()) == before);  // every blob in use stays
  CHECK(RunCli({"verify"}, env).exit_code == 0);
}

TEST_CASE("log --repo and --since filter the history") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  PullOk(env, {fixtures::kModelRepo});
  PullOk(env, {fixtures::kVersionsRepo});
  auto all = RunCli({"log"}, env);
  auto one = RunCli({"log", "--repo", fixtures::kVersionsRepo, "--json"}, env);
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  CHECK(one.out.find(fixtures::kModelRepo) == std::string::npos);
  size_t lines_all = std::count(all.out.begin(), all.out.end(), '\n');
  size_t lines_one = std::count(one.out.begin(), one.out.end(), '\n');
  CHECK(lines_one > 0);
  CHECK(lines_one < lines_all);
  for (std::string_view rest = one.out; !rest.empty();) {  // every line is that repo's
    auto nl = rest.find('\n');
    std::string line(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
    if (line.find("\"repo\"") != std::string::npos)
      CHECK(line.find(fixtures::kVersionsRepo) != std::string::npos);
  }
  CHECK(RunCli({"log", "--since", "1h"}, env).out == all.out);
  CHECK(RunCli({"log", "--since", "2000-01-01T00:00:00Z"}, env).out == all.out);
  CHECK(RunCli({"log", "--since", "2999-01-01"}, env).out.empty());
  CHECK(RunCli({"log", "--since", "yesterday-ish"}, env).exit_code == 2);
}

TEST_CASE("a corrupt log: verify, rebuild and status name the event and exit 3") {
  Hub hub;
  TempDir base;
  std::string a = base.path() + "/a", b = base.path() + "/b";
  // A model id found only in late events (RevisionActivated, MarkerWritten), so the events
  // before them stay readable.
  const std::string id = "marker-q7x";
  PullOk(hub.Env(a), {fixtures::kModelRepo, "--id", id});
  REQUIRE(std::system(("cp -a " + a + " " + b).c_str()) == 0);
  // Flip a bit in every copy of the model id in the copy's data file (small events are raw).
  std::string mdb = b + "/.modelsync/log/data.mdb";
  auto data = ReadFile(mdb);
  REQUIRE(data.ok());
  std::string bytes = *data;
  size_t hits = 0;
  for (size_t p = bytes.find(id); p != std::string::npos; p = bytes.find(id, p + 1)) {
    bytes[p + 2] = static_cast<char>(bytes[p + 2] ^ 0x01);
    ++hits;
  }
  REQUIRE(hits > 0);
  { std::ofstream(mdb, std::ios::binary | std::ios::trunc) << bytes; }
  auto env = hub.Env(b);
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"verify"}, {"rebuild"}, {"status"}, {"gc"}}) {
    auto r = RunCli(cmd, env);
    INFO(cmd[0], r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("event #") != std::string::npos);
    CHECK(r.err.find("is corrupt") != std::string::npos);
    if (cmd[0] != "status") CHECK(r.err.find("What still works") != std::string::npos);
  }
  // What still works: the model files are untouched, and log prints up to the damage.
  CHECK(Compare(hub, b, fixtures::kModelRepo, "main", id) == "");
  auto log = RunCli({"log"}, env);
  CHECK(log.exit_code == 3);
  CHECK(!log.out.empty());
}
