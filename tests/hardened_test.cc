// Hardened (issue 21, the items fixed so far): nothing written or deleted outside the root
// through the root's own symlinks, no user file truncated, hostile listings (case
// collisions, absurd sizes, deep paths, a manifest over the event cap) refused up front or
// stored safely, no password in the log, no silent exit 0 when stdout is unwritable. Through
// the real binary against the real emulator, and the real LMDB log.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/journal.h"
#include "engine/manifest_events.h"
#include "fixtures/fixtures.h"
#include "fixtures/repo_builder.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kModel = "mlx-community/Tiny-Model-4bit";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status MakeRepo(const std::string& dir, const std::string& id,
                const std::vector<std::pair<std::string, std::string>>& files) {
  fixtures::RepoBuilder b(dir, id);
  for (const auto& [p, c] : files) MS_RETURN_IF_ERROR(b.AddFile(p, c));
  MS_ASSIGN_OR_RETURN(std::string sha, b.Commit("init"));
  b.SetRef("main", sha);
  return b.Write();
}

struct Hub {
  Hub() : emu(EmulatorProcess::Options{Prepared(fixtures), "", 1000, false, {}}) {
    REQUIRE(emu.Start().ok());
  }
  static fixtures::FixtureOptions Opts() {
    fixtures::FixtureOptions fo;
    fo.only = {"model"};
    return fo;
  }
  static std::string Prepared(const FixtureDir& fx) {
    const std::string d = fx.path();
    REQUIRE(MakeRepo(d, "h2/case-paths",
                     {{"README.md", "r"}, {"Docs/a.txt", "a"}, {"docs/b.txt", "b"}})
                .ok());
    REQUIRE(MakeRepo(d, "h2/Tiny", {{"README.md", "upper"}}).ok());
    REQUIRE(MakeRepo(d, "h2/tiny", {{"README.md", "lower"}}).ok());
    std::string deep;
    for (int i = 0; i < 70; ++i) deep += "d/";
    REQUIRE(MakeRepo(d, "h2/deep", {{"README.md", "r"}, {deep + "x.txt", "x"}}).ok());
    {
      std::vector<std::pair<std::string, std::string>> many = {{"README.md", "r"}};
      for (int i = 0; i < 300; ++i) many.push_back({"dir" + std::to_string(i) + "/f.txt", "x"});
      REQUIRE(MakeRepo(d, "h2/many-dirs", many).ok());
    }
    REQUIRE(MakeRepo(d, "h2/nfd", {{"README.md", "r"}, {"caf\xc3\xa9.txt", "nfc"},
                                   {"cafe\xcc\x81.txt", "nfd"}}).ok());
    REQUIRE(MakeRepo(d, "h2/nfd-case", {{"README.md", "r"}, {"\xc3\x89t\xc3\xa9.txt", "1"},
                                        {"\xc3\xa9t\xc3\xa9.txt", "2"}}).ok());
    REQUIRE(MakeRepo(d, "h2/long-name", {{"README.md", "r"}, {std::string(256, 'n'), "x"}}).ok());
    REQUIRE(MakeRepo(d, "h2/file-and-dir", {{"README.md", "r"}, {"x", "file"}, {"x/y", "below"}}).ok());
    REQUIRE(MakeRepo(d, "h2/huge", {{"README.md", "r"}, {"big.bin", "small really"}}).ok());
    {
      // The listing claims 2^63 bytes for big.bin.
      std::string path = d + "/h2/huge/repo.json";
      json rj = json::parse(Slurp(path));
      for (auto& [sha, c] : rj["commits"].items())
        for (auto& f : c["files"])
          if (f["path"] == "big.bin") f["size"] = uint64_t{1} << 63;
      std::ofstream(path) << rj.dump();
    }
    return d;
  }
  std::map<std::string, std::string> Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root},        {"HF_ENDPOINT", emu.hub_url()},
            {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
            {"HF_HOME", root + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  }
  uint64_t CdnRequests() { return (*emu.Stats())["cdn"]["requests"].get<uint64_t>(); }
  FixtureDir fixtures{Opts()};
  EmulatorProcess emu;
};

}  // namespace

TEST_CASE("21.1 gc with a symlinked log deletes nothing outside the root and leaves no log.compact") {
  Hub hub;
  TempDir root, elsewhere;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", kModel, "--quiet"}, env).exit_code == 0);
  // The owner moved the log to another disk and left a symlink.
  std::string log = root.path() + "/.modelsync/log", moved = elsewhere.path() + "/log";
  fs::rename(log, moved);
  fs::create_directory_symlink(moved, log);
  { std::ofstream(moved + "/decoy.txt") << "not modelsync's"; }
  { std::ofstream(elsewhere.path() + "/unrelated.txt") << "mine"; }
  REQUIRE(RunCli({"remove", kModel}, env).exit_code == 0);  // gives gc something to drop
  for (int i = 0; i < 2; ++i) {
    auto gc = RunCli({"gc", "--json"}, env);
    INFO(gc.out, gc.err);
    CHECK(gc.exit_code == 0);
    CHECK(Slurp(moved + "/decoy.txt") == "not modelsync's");
    CHECK(Slurp(elsewhere.path() + "/unrelated.txt") == "mine");
    CHECK(fs::is_symlink(log));
    CHECK_FALSE(fs::exists(fs::symlink_status(log + ".compact")));
  }
  CHECK(RunCli({"status"}, env).exit_code == 0);
  CHECK(RunCli({"pull", kModel, "--quiet"}, env).exit_code == 0);
}

TEST_CASE("21.2 lock files are never opened through a symlink") {
  Hub hub;
  TempDir root, elsewhere;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", kModel, "--quiet"}, env).exit_code == 0);
  std::string victim = elsewhere.path() + "/passwd-copy";
  { std::ofstream(victim) << "root:x:0:0:root:/root:/bin/bash\n"; }
  const std::string before = Slurp(victim);
  for (const char* name : {"lock", "daemon.lock"}) {
    std::string lock = root.path() + "/.modelsync/" + name;
    fs::remove(lock);
    fs::create_symlink(victim, lock);
  }
  auto p = RunCli({"pull", kModel}, env);
  INFO(p.err);
  CHECK(p.exit_code != 0);
  CHECK(p.err.find("symlink") != std::string::npos);
  auto d = RunCli({"daemon"}, env);
  INFO(d.err);
  CHECK(d.exit_code != 0);
  CHECK(Slurp(victim) == before);
}

TEST_CASE("21.5 names that differ only in case are refused before any fetch") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  auto c = RunCli({"pull", "h2/case-paths"}, env);
  INFO(c.err);
  CHECK(c.exit_code == 2);
  CHECK(c.err.find("differ only in case") != std::string::npos);
  CHECK(hub.CdnRequests() == 0);
  CHECK_FALSE(fs::exists(root.path() + "/models/h2/case-paths"));

  REQUIRE(RunCli({"pull", "h2/Tiny", "--quiet"}, env).exit_code == 0);
  auto t = RunCli({"pull", "h2/tiny", "--id", "tiny2"}, env);
  INFO(t.err);
  CHECK(t.exit_code == 2);
  CHECK(t.err.find("differ only in case") != std::string::npos);
  CHECK(Slurp(root.path() + "/models/h2/Tiny/README.md") == "upper");
  // remove of the other spelling does not touch Tiny.
  CHECK(RunCli({"remove", "h2/tiny"}, env).exit_code == 8);
  CHECK(Slurp(root.path() + "/models/h2/Tiny/README.md") == "upper");
}

TEST_CASE("21.6 and 21.11 an absurd size or a path too deep is refused up front") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  auto h = RunCli({"pull", "h2/huge"}, env);
  INFO(h.err);
  CHECK(h.exit_code == 2);
  CHECK(h.err.find("9223372036854775808 bytes") != std::string::npos);
  auto d = RunCli({"pull", "h2/deep"}, env);
  INFO(d.err);
  CHECK(d.exit_code == 2);
  CHECK(d.err.find("directories deep") != std::string::npos);
  CHECK(hub.CdnRequests() == 0);
  // Nothing of either listing became a durable fact.
  CHECK(RunCli({"log"}, env).out.find("RevisionResolved") == std::string::npos);
}

TEST_CASE("21.4 a manifest over the event cap is split across events, never a bricked log") {
  TempDir root;
  // 17,000 files with ~4 KB paths: ~70 MB of listing, over the 64 MiB cap of one event.
  std::vector<v1::FileEntry> files;
  for (int i = 0; i < 17000; ++i) {
    v1::FileEntry f;
    f.set_path(std::string(4000, 'p') + "/" + std::to_string(i));
    f.set_size(static_cast<uint64_t>(i));
    f.set_git_oid(std::string(40, 'a'));
    files.push_back(std::move(f));
  }
  const std::string commit(40, 'c');
  auto events = engine::ResolvedEvents("big/listing", "main", commit, "http://u:SECRET@h", files);
  CHECK(events.size() > 4);
  {
    auto j = engine::Journal::Open(root.path(), false);
    REQUIRE(j.ok());
    // One event over the cap is refused whole, and the log stays readable.
    v1::Event whole;
    auto* rr = whole.mutable_revision_resolved();
    rr->set_repo("big/listing");
    rr->set_commit(commit);
    for (const auto& f : files) *rr->mutable_manifest()->add_files() = f;
    auto refused = (*j)->Append({whole});
    CHECK(refused.status().code() == StatusCode::kInvalidArgument);
    REQUIRE((*j)->Append(std::move(events)).ok());
  }
  auto j = engine::Journal::Open(root.path(), true);
  REQUIRE(j.ok());
  const auto& rs = (*j)->state().repos.at("big/listing");
  REQUIRE(rs.revisions.count(commit));
  CHECK(rs.revisions.at(commit).files.size() == files.size());
  CHECK(rs.revisions.at(commit).files.back().path() == files.back().path());
  CHECK((*j)->state().anomalies == 0);
  // 21.17: no credentials in the log.
  std::string endpoint;
  REQUIRE((*j)->ForEachEvent(1, [&](uint64_t, const v1::Event& e) {
              if (e.has_revision_resolved()) endpoint = e.revision_resolved().endpoint();
              return Status::Ok();
            }).ok());
  CHECK(endpoint == "http://h");
}

TEST_CASE("21.18 a command whose output cannot be written does not exit 0") {
  Hub hub;
  TempDir root;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", kModel, "--quiet"}, env).exit_code == 0);
  for (const char* cmd : {"status", "ls", "list", "verify", "inspect " , "log"}) {
    std::string line = "MODELSYNC_ROOT='" + root.path() + "' HF_HUB_OFFLINE=1 '" + CliPath() +
                       "' " + cmd + (std::string(cmd) == "inspect " ? kModel : "") +
                       " > /dev/full 2>/dev/null";
    int rc = std::system(line.c_str());
    INFO(cmd);
    CHECK(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) != 0);
  }
}

TEST_CASE("21.10 more directories than the open-file limit: pull, verify and rebuild work") {
  Hub hub;
  TempDir root, logs;
  auto run = [&](const std::string& args) {
    std::string line = "ulimit -n 128; MODELSYNC_ROOT='" + root.path() + "' HF_ENDPOINT='" +
                       hub.emu.hub_url() + "' '" + CliPath() + "' " + args +
                       " > '" + logs.path() + "/out.txt' 2>&1";
    int rc = std::system(line.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  CHECK(run("pull h2/many-dirs --quiet") == 0);
  INFO(Slurp(logs.path() + "/out.txt"));
  CHECK(fs::exists(root.path() + "/models/h2/many-dirs/dir299/f.txt"));
  fs::remove_all(root.path() + "/models/h2/many-dirs");
  CHECK(run("rebuild") == 0);
  CHECK(run("verify") == 0);
  CHECK(fs::exists(root.path() + "/models/h2/many-dirs/dir299/f.txt"));
}

// Item 14: a disk that fills during a pull reads as no space (exit 6) wherever the short
// write lands (a blob, a small file, or the log, where LMDB turns it into EIO), never as
// "Input/output error ... check the disk"; after space is freed the same pull completes. A
// real full disk: a tmpfs in a private mount namespace (unshare -m), so nothing outlives the
// command; a filler takes the last space while the download is paced by the emulator.
TEST_CASE("21.14 a disk that fills mid-pull is 'no space', exit 6, and the resume completes") {
  fixtures::FixtureOptions fo;
  fo.only = {"model"};
  fo.weights_bytes = 6u << 20;
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                          {"throttle_bps", 3000000}}})
              .ok());
  TempDir base;
  std::string mnt = base.path() + "/mnt", out = base.path() + "/out", out2 = base.path() + "/out2",
              out3 = base.path() + "/out3";
  fs::create_directories(mnt);
  std::string ms = "MODELSYNC_ROOT='" + mnt + "/root' HF_ENDPOINT='" + emu.hub_url() +
                   "' MODELSYNC_SMALL_FILE_BYTES=64KiB '" + CliPath() + "' pull " + kModel;
  std::string script =
      "mount -t tmpfs -o size=16m tmpfs '" + mnt + "' || exit 99; " +
      "(" + ms + " > '" + out + "' 2>&1; echo \\$? > '" + out + ".rc') & " +
      "sleep 0.7; dd if=/dev/zero of='" + mnt + "/filler' bs=64k > /dev/null 2>&1; wait; " +
      "rm -f '" + mnt + "/filler'; " + ms + " --quiet > '" + out2 + "' 2>&1; echo \\$? > '" + out2 + ".rc'; " +
      // The log itself on a full disk: a track must grow the LMDB file.
      "dd if=/dev/zero of='" + mnt + "/filler' bs=4k > /dev/null 2>&1; " +
      "rc=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do MODELSYNC_ROOT='" + mnt +
      "/root' '" + CliPath() + "' track org/repo-\\$i --include '" + std::string(3000, 'x') +
      "' > '" + out3 + "' 2>&1 || { rc=\\$?; break; }; done; echo \\$rc > '" + out3 + ".rc'";
  int rc = std::system(("unshare -m sh -c \"" + script + "\"").c_str());
  REQUIRE(WIFEXITED(rc));
  REQUIRE(WEXITSTATUS(rc) != 99);
  std::string text = Slurp(out);
  INFO("first pull: ", Slurp(out + ".rc"), text, "\nresume: ", Slurp(out2 + ".rc"), Slurp(out2));
  CHECK(Slurp(out + ".rc") == "6\n");
  CHECK(text.find("Input/output error") == std::string::npos);
  CHECK((text.find("space") != std::string::npos || text.find("free") != std::string::npos));
  CHECK(Slurp(out2 + ".rc") == "0\n");
  MESSAGE("disk full mid-pull said: " << text.substr(text.find("modelsync pull:")));
  std::string log_full = Slurp(out3);
  INFO("track on a full disk: ", Slurp(out3 + ".rc"), log_full);
  CHECK(Slurp(out3 + ".rc") == "6\n");
  CHECK(log_full.find("Input/output error") == std::string::npos);
  MESSAGE("a log write on a full disk said: " << log_full);
}

// Item 16: another user can read a root they cannot write (LMDB's lock file is not theirs):
// status, ls, log and verify work, and an offline pull of a complete model says it is ready
// without writing anything.
TEST_CASE("21.16 a readable root works read-only for another user; an offline pull reports it ready") {
  Hub hub;
  TempDir root, bin;
  auto env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", kModel, "--quiet"}, env).exit_code == 0);
  fs::permissions(root.path(), fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
  fs::permissions(bin.path(), fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  fs::copy_file(CliPath(), bin.path() + "/modelsync");
  auto before = fs::last_write_time(root.path() + "/.modelsync/log/data.mdb");
  auto as_nobody = [&](const std::string& args, std::string* out) {
    std::string file = bin.path() + "/out.txt";
    // (LeakSanitizer, in the sanitizer build, is left to the runs as root.)
    std::string line = "cd / && setpriv --reuid=65534 --regid=65534 --clear-groups env -i "
                       "ASAN_OPTIONS=detect_leaks=0 HF_HUB_OFFLINE=1 MODELSYNC_ROOT='" + root.path() + "' '" + bin.path() +
                       "/modelsync' " + args + " > '" + file + "' 2>&1";
    int rc = std::system(line.c_str());
    *out = Slurp(file);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  std::string out;
  CHECK(as_nobody("status", &out) == 0);
  INFO(out);
  CHECK(out.find("complete") != std::string::npos);
  CHECK(as_nobody("ls --json", &out) == 0);
  CHECK(as_nobody("log", &out) == 0);
  CHECK(out.find("MarkerWritten") != std::string::npos);
  CHECK(as_nobody("verify", &out) == 0);
  CHECK(as_nobody(std::string("pull ") + kModel, &out) == 0);
  CHECK(out.find("read-only root") != std::string::npos);
  // What it cannot do, it says: an online pull needs to write.
  CHECK(fs::last_write_time(root.path() + "/.modelsync/log/data.mdb") == before);
}

// Item 12: models/ on another file system than the blob store (hard links impossible): the
// materializer copies (read-only); a second pull is a no-op, rebuild leaves the copies, and
// verify passes. A tmpfs mounted on models/ in a private mount namespace.
TEST_CASE("21.12 models/ on another file system: copies settle, the next pull does nothing") {
  Hub hub;
  TempDir root, logs;
  std::string ms = "MODELSYNC_ROOT='" + root.path() + "' HF_ENDPOINT='" + hub.emu.hub_url() +
                   "' '" + CliPath() + "' ";
  auto step = [&](const std::string& name, const std::string& args) {
    return ms + args + " > '" + logs.path() + "/" + name + "' 2>&1; echo \\$? > '" + logs.path() +
           "/" + name + ".rc'; ";
  };
  std::string script = "mkdir -p '" + root.path() + "/models' && mount -t tmpfs tmpfs '" +
                       root.path() + "/models' || exit 99; " + step("pull1", std::string("pull ") + kModel) +
                       step("pull2", std::string("pull ") + kModel + " --json") +
                       step("rebuild", "rebuild --json") + step("verify", "verify") +
                       "ls -l '" + root.path() + "/models/" + kModel + "' > '" + logs.path() + "/ls'";
  int rc = std::system(("unshare -m sh -c \"" + script + "\"").c_str());
  REQUIRE(WIFEXITED(rc));
  REQUIRE(WEXITSTATUS(rc) != 99);
  auto rc_of = [&](const std::string& n) { return Slurp(logs.path() + "/" + n + ".rc"); };
  INFO("pull1: ", Slurp(logs.path() + "/pull1"), "\npull2: ", Slurp(logs.path() + "/pull2"),
       "\nrebuild: ", Slurp(logs.path() + "/rebuild"), "\nverify: ", Slurp(logs.path() + "/verify"),
       "\n", Slurp(logs.path() + "/ls"));
  CHECK(rc_of("pull1") == "0\n");
  CHECK(rc_of("pull2") == "0\n");
  CHECK(Slurp(logs.path() + "/pull2").find("\"up_to_date\":true") != std::string::npos);
  CHECK(rc_of("rebuild") == "0\n");
  CHECK(Slurp(logs.path() + "/rebuild").find("\"dir_rebuilt\":false") != std::string::npos);
  CHECK(rc_of("verify") == "0\n");
}

TEST_CASE("21.20 messages: every unsafe listing is exit 2 up front; verify never follows a symlinked models/<org>") {
  Hub hub;
  TempDir root, outside;
  auto env = hub.Env(root.path());
  for (const char* repo :
       {"h2/long-name", "h2/file-and-dir", "h2/case-paths", "h2/deep", "h2/nfd", "h2/nfd-case"}) {
    auto r = RunCli({"pull", repo}, env);
    INFO(repo, ": ", r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("run pull again") == std::string::npos);
  }
  CHECK(hub.CdnRequests() == 0);
  REQUIRE(RunCli({"pull", kModel, "--quiet"}, env).exit_code == 0);
  // models/mlx-community moved outside the root and linked back.
  std::string org = root.path() + "/models/mlx-community";
  fs::rename(org, outside.path() + "/org");
  fs::create_directory_symlink(outside.path() + "/org", org);
  auto v = RunCli({"verify"}, env);
  INFO(v.out, v.err);
  CHECK(v.exit_code == 3);
  CHECK(v.out.find("is a symlink") != std::string::npos);
  CHECK(v.out.find("..") == std::string::npos);
  CHECK(RunCli({"pull", kModel}, env).exit_code != 0);  // pull refuses the layout too
}

// Issue 14: verify walked the model directory with std::filesystem and opened files by path,
// so a symlinked subdirectory was hashed through (its files "ok", the link an "extra" file).
// It reads through Dir handles now: the files behind the link are reported, never read.
TEST_CASE("verify never hashes through a symlinked subdirectory of a model") {
  Hub hub;
  TempDir base;
  const std::string root = base.path() + "/root";
  auto env = hub.Env(root);
  auto p = RunCli({"pull", "h2/many-dirs", "--quiet"}, env);
  INFO(p.err);
  REQUIRE(p.exit_code == 0);
  REQUIRE(RunCli({"verify"}, env).exit_code == 0);
  // dir7 becomes a symlink to an identical copy outside the root.
  const std::string dir = root + "/models/h2/many-dirs";
  fs::create_directories(base.path() + "/decoy");
  fs::copy(dir + "/dir7", base.path() + "/decoy/dir7", fs::copy_options::recursive);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
  fs::permissions(dir + "/dir7", fs::perms::owner_all, fs::perm_options::add);
  fs::remove_all(dir + "/dir7");
  fs::create_directory_symlink(base.path() + "/decoy/dir7", dir + "/dir7");
  auto v = RunCli({"verify", "--json"}, env);
  INFO(v.out, v.err);
  CHECK(v.exit_code == 3);
  CHECK(v.out.find("\"path\":\"dir7/f.txt\"") != std::string::npos);
  CHECK(v.out.find("\"damaged\":true") != std::string::npos);
  CHECK(fs::exists(base.path() + "/decoy/dir7/f.txt"));  // nothing outside the root touched
}
