// Crash points over a whole pull-and-update (issue #6): the scenario (pull fixtures/versions
// at v1, then at main) runs in a forked child through a FaultFileSystem that counts every
// write, sync, rename, link, create, remove and allocate; it is rerun with the child
// _exit()ing at side effect i, for each i (CI: every stride-th point, MODELSYNC_CRASH_STRIDE=1
// for all). After each crash the real binary must converge (pull main), `verify` must pass,
// `rebuild` must find nothing to do and the model must equal the fixture.
// Not covered here: crashes inside an LMDB commit (the log is not behind FileSystem; see
// storage_process_test for SIGKILL mid-commit) and power loss (DropUnsynced) of a whole pull.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/hash.h"
#include "engine/pull_internal.h"
#include "fixtures/fixtures.h"
#include "storage/fault_file_system.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
namespace fs = std::filesystem;

namespace {

constexpr int kCrashExit = 42;

// Runs the scenario in a child; crash_at = 0: no crash, the child writes the op count to fd.
int RunScenario(const std::string& root, const std::string& hub, uint64_t crash_at, int fd) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::unsetenv("HF_HUB_OFFLINE");
    ::unsetenv("HF_TOKEN");
    ::setenv("HF_HOME", (root + ".hf").c_str(), 1);
    storage::FaultFileSystem ffs(storage::RealFileSystem());
    if (crash_at)
      ffs.SetHook([crash_at](storage::FsOp, uint64_t index, const std::string&) {
        if (index == crash_at) ::_exit(kCrashExit);
      });
    engine::PullInternalOptions in;
    in.fs = &ffs;
    for (const char* rev : {"v1", "main"}) {
      engine::PullOptions po;
      po.root = root;
      po.repo = fixtures::kVersionsRepo;
      po.revision = rev;
      po.endpoint = hub;
      po.connections = 2;
      auto r = engine::PullWith(po, nullptr, in);
      if (!r.ok()) ::_exit(1);
    }
    if (fd >= 0) {
      uint64_t n = ffs.TotalCount();
      (void)!::write(fd, &n, sizeof n);
    }
    ::_exit(0);
  }
  return WaitExit(pid);
}

std::string CompareMain(const FixtureDir& fx, const std::string& root) {
  nlohmann::json rj = fx.RepoJson(fixtures::kVersionsRepo);
  std::string commit = rj["refs"]["main"].get<std::string>();
  size_t n = 0;
  for (const auto& f : rj["commits"][commit]["files"]) {
    std::string p = f["path"].get<std::string>();
    if (HashFileHex(HashKind::kSha256, root + "/models/fixtures/versions/" + p) !=
        HashFileHex(HashKind::kSha256, fx.ObjectPath(fixtures::kVersionsRepo, "main", p)))
      return "differs: " + p;
    ++n;
  }
  size_t on_disk = 0;
  for (auto& e : fs::recursive_directory_iterator(root + "/models/fixtures/versions"))
    on_disk += e.is_regular_file();
  if (on_disk != n) return "extra files";
  if (!fs::is_regular_file(root + "/versions")) return "marker missing";
  return "";
}

}  // namespace

TEST_CASE("a crash at every file-system side effect of pull v1 -> main converges and verifies") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 10;
  fo.small_files = 2;
  FixtureDir fx(fo);
  EmulatorProcess emu(
      EmulatorProcess::Options{fx.path(), "hf_testtoken_0123456789", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir base;

  int p[2];
  REQUIRE(::pipe(p) == 0);
  REQUIRE(RunScenario(base.path() + "/count", emu.hub_url(), 0, p[1]) == 0);
  uint64_t total = 0;
  REQUIRE(::read(p[0], &total, sizeof total) == sizeof total);
  ::close(p[0]);
  ::close(p[1]);
  REQUIRE(total > 10);
  CHECK(CompareMain(fx, base.path() + "/count") == "");

  uint64_t stride = std::max<uint64_t>(1, total / 24);
  if (const char* s = std::getenv("MODELSYNC_CRASH_STRIDE")) stride = std::max(1, std::atoi(s));
  uint64_t points = 0, crashed = 0;
  for (uint64_t i = 1; i <= total; i += stride) {
    std::string root = base.path() + "/r" + std::to_string(i);
    int code = RunScenario(root, emu.hub_url(), i, -1);
    INFO("crash point ", i, " of ", total);
    REQUIRE((code == kCrashExit || code == 0));
    crashed += code == kCrashExit;
    ++points;
    std::map<std::string, std::string> env = {{"MODELSYNC_ROOT", root},
                                              {"HF_ENDPOINT", emu.hub_url()},
                                              {"HF_TOKEN", "\x01unset"},
                                              {"HF_HUB_OFFLINE", "\x01unset"},
                                              {"HF_HOME", root + ".hf"}};
    auto pull = RunCli({"pull", fixtures::kVersionsRepo, "--quiet"}, env);
    INFO(pull.err);
    REQUIRE(pull.exit_code == 0);
    auto v = RunCli({"verify"}, env);
    INFO(v.out, v.err);
    CHECK(v.exit_code == 0);
    auto rb = RunCli({"rebuild", "--json"}, env);
    CHECK(rb.exit_code == 0);
    CHECK(rb.out.find("\"dir_rebuilt\":false") != std::string::npos);
    CHECK(rb.out.find("\"marker_written\":false") != std::string::npos);
    CHECK(CompareMain(fx, root) == "");
    fs::remove_all(root);
  }
  MESSAGE("crash points: ", total, " side effects, ", points, " run (stride ", stride, "), ",
          crashed, " crashed and converged");
  CHECK(crashed > 0);
}
