// storage/fault_file_system.h: Tick (side effects outside the file system, e.g. event
// commits, in the same sequence) and Freeze (a quiet file system for DropUnsynced while
// other threads still write), as the crash and power-loss loops use them.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "storage/fault_file_system.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using modelsync::testing::Slurp;
using modelsync::testing::TempDir;

TEST_CASE("Tick counts an outside side effect in the same sequence, with hook and faults") {
  TempDir t;
  FaultFileSystem fs(RealFileSystem());
  auto root = fs.OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto f = (*root)->OpenFile("f", OpenMode::kCreate);
  REQUIRE(f.ok());
  std::vector<std::pair<FsOp, std::string>> seen;
  fs.SetHook([&](FsOp op, uint64_t, const std::string& what) { seen.push_back({op, what}); });
  CHECK(fs.Tick(FsOp::kCommit, "before commit") == 0);
  REQUIRE((*f)->PWrite(0, "x").ok());
  fs.FailNth(FsOp::kCommit, 2, EIO);
  CHECK(fs.Tick(FsOp::kCommit, "after commit") == EIO);  // the caller decides what it means
  CHECK(fs.TotalCount() == 4);
  CHECK(fs.Count(FsOp::kCommit) == 2);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].first == FsOp::kCommit);
  CHECK(seen[0].second == "before commit");
  CHECK(seen[1].first == FsOp::kWrite);
  CHECK(std::string(FsOpName(FsOp::kCommit)) == "commit");
}

TEST_CASE("Freeze stops every other thread's ops, then DropUnsynced runs on a quiet disk") {
  TempDir t;
  // In a child: the frozen writer thread never returns (as in the crash-point loops).
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FaultFileSystem fs(RealFileSystem());
    auto root = fs.OpenRoot(t.path(), false);
    if (!root.ok()) ::_exit(2);
    auto f = (*root)->OpenFile("f", OpenMode::kCreate);
    if (!f.ok() || !(*f)->Allocate(1 << 20).ok() || !(*f)->Sync().ok() || !(*root)->Sync().ok())
      ::_exit(3);
    std::atomic<uint64_t> written{0};
    std::thread writer([&] {
      for (uint64_t i = 0;; ++i) {  // until frozen
        if (!(*f)->PWrite((i % 256) * 4096, std::string(4096, 'w')).ok()) ::_exit(4);
        written = i + 1;
      }
    });
    writer.detach();
    while (written.load() < 5) std::this_thread::yield();
    bool exited = false;
    fs.SetHook([&](FsOp op, uint64_t, const std::string&) {
      if (op != FsOp::kCommit) return;
      fs.Freeze();
      // The writer never stops writing: it reaches its next write and is parked there for
      // good (a freeze is never undone), so nothing it does can land after this.
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (fs.held() == 0) {
        if (std::chrono::steady_clock::now() > give_up) ::_exit(5);  // the writer did not stop
        std::this_thread::yield();
      }
      if (!fs.frozen()) ::_exit(6);
      if (!fs.DropUnsynced(FaultFileSystem::LossMode::kZero).ok()) ::_exit(7);
      // Nothing written after the last sync survives.
      std::string data = Slurp(t.path() + "/f");
      if (data != std::string(1 << 20, '\0')) ::_exit(8);
      exited = true;
      ::_exit(0);
    });
    (void)fs.Tick(FsOp::kCommit, "the crash point");
    ::_exit(exited ? 0 : 9);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
