// engine/materializer: building models/<org>/<name> from blobs, the atomic swap, markers;
// hostile paths and planted symlinks; every-Nth-op I/O errors; crash points (fork + _exit,
// and power loss at each point).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>

#include "base/hash.h"
#include "base/platform.h"
#include "engine/layout.h"
#include "engine/materializer.h"
#include "engine/observe.h"
#include "storage/blob_store.h"
#include "materializer_trees.h"
#include "storage/fault_file_system.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::engine;
using modelsync::storage::FaultFileSystem;
using modelsync::storage::FileSystem;
using modelsync::storage::FsOp;
using modelsync::testing::Exists;
using modelsync::testing::Slurp;
using modelsync::testing::Spit;
using modelsync::testing::TempDir;
namespace fs = std::filesystem;
using namespace modelsync::testing::trees;

TEST_CASE("materialize builds hard links to blobs and swaps revisions atomically") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V1());
  PutBlobs(t.path(), V2());
  REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
  CHECK(ReadTree(ModelDir(t.path())) == V1());
  CHECK(Exists(t / "tiny-model"));
  struct stat a {
  }, b{};
  REQUIRE(::stat((ModelDir(t.path()) + "/config.json").c_str(), &a) == 0);
  REQUIRE(::stat((t / ".modelsync/blobs/").append(IdOf("{\"v\": 1}")).c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V2()).ok());
  CHECK(ReadTree(ModelDir(t.path())) == V2());
  CHECK(NoLeftovers(t.path()));

  // Observe sees every file as a link to its blob.
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto obs = Observe(**root, kRepo, {"tiny-model", "other"});
  REQUIRE(obs.ok());
  CHECK(obs->model_dir_exists);
  CHECK(obs->markers == std::set<std::string>{"tiny-model"});
  REQUIRE(obs->model_files.size() == V2().size());
  for (const auto& [p, c] : V2()) CHECK(obs->model_files[p].blob_id == IdOf(c));
  CHECK_FALSE(obs->staging_exists);

  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  Materializer m(**root, **blobs);
  REQUIRE(m.RemoveMarker("tiny-model").ok());
  REQUIRE(m.RemoveMarker("tiny-model").ok());
  CHECK_FALSE(m.HasMarker("tiny-model"));
  REQUIRE(m.RemoveModel(kRepo).ok());
  CHECK_FALSE(Exists(ModelDir(t.path())));
  CHECK(NoLeftovers(t.path()));
}

TEST_CASE("a missing blob fails the build with a message naming the file; the old dir stays") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V1());
  REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
  Status s = Scenario(storage::RealFileSystem(), t.path(), V2());
  CHECK(s.IsNotFound());
  CHECK(s.message().find("config.json") != std::string::npos);  // the first file without a blob
  CHECK(ReadTree(ModelDir(t.path())) == V1());
}

TEST_CASE("hostile paths and ids are refused before anything is written") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), {{"x", "x"}});
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  Materializer m(**root, **blobs);
  for (std::string bad :
       std::vector<std::string>{"../escape", "/etc/passwd", "a/../../b", "a\\b", "a//b", "./a",
                                std::string("a\0b", 3), "a\nb", std::string(256, 'n'), ""}) {
    Status s = m.Materialize(kRepo, {{"ok.txt", IdOf("x")}, {bad, IdOf("x")}});
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(Exists(t / "models"));
  }
  CHECK(m.Materialize("../etc", {{"a", IdOf("x")}}).code() == StatusCode::kInvalidArgument);
  CHECK(m.Materialize(kRepo, {{"a", "../../x"}}).code() == StatusCode::kInvalidArgument);
  CHECK(m.WriteMarker("../x").code() == StatusCode::kInvalidArgument);
  CHECK(m.WriteMarker(".modelsync").code() == StatusCode::kInvalidArgument);
  CHECK(m.WriteMarker("models").code() == StatusCode::kInvalidArgument);
  CHECK_FALSE(Exists(t / "models"));
}

TEST_CASE("a symlink planted under models/ is never written through") {
  TempDir t, outside;
  PutBlobs(t.path(), V1());
  Spit(outside / "keep", "keep");
  SUBCASE("models/<org> is a symlink") {
    fs::create_directories(t / "models");
    fs::create_directory_symlink(outside.path(), t / "models/acme");
    Status s = Scenario(storage::RealFileSystem(), t.path(), V1());
    CHECK_FALSE(s.ok());
    CHECK(s.message().find("models/acme") != std::string::npos);
  }
  SUBCASE("models is a symlink") {
    fs::create_directory_symlink(outside.path(), t / "models");
    CHECK_FALSE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
  }
  SUBCASE("the staging name is a symlink") {
    fs::create_directories(t / "models/acme");
    fs::create_directory_symlink(outside.path(), t / "models/acme/.tiny-model.staging");
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());  // removed, not followed
    CHECK(ReadTree(ModelDir(t.path())) == V1());
  }
  SUBCASE("the old model dir holds a symlink to outside") {
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
    fs::create_directory_symlink(outside.path(), ModelDir(t.path()) + "/evil");
    PutBlobs(t.path(), V2());
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V2()).ok());
    CHECK(ReadTree(ModelDir(t.path())) == V2());
  }
  SUBCASE("the marker is a symlink") {
    fs::create_symlink(outside / "keep", t / "tiny-model");
    CHECK_FALSE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
  }
  CHECK(ReadTree(outside.path()) == Tree{{"keep", "keep"}});
}

TEST_CASE("hard links impossible (EXDEV): files are copied, read-only") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V1());
  FaultFileSystem ffs(storage::RealFileSystem());
  ffs.FailNth(FsOp::kLink, 1, EXDEV, /*persistent=*/true);
  auto root = ffs.OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  Materializer m(**root, **blobs);
  MaterializeStats st;
  REQUIRE(m.Materialize(kRepo, Files(V1()), &st).ok());
  CHECK(st.linked == 0);
  CHECK(st.copied == V1().size());
  CHECK(ReadTree(ModelDir(t.path())) == V1());
  struct stat s {};
  REQUIRE(::stat((ModelDir(t.path()) + "/config.json").c_str(), &s) == 0);
  CHECK(s.st_nlink == 1);
  CHECK((s.st_mode & 0777) == 0444);
}

TEST_CASE("I/O errors at every op of an update: clear error, never a mixed dir, rerun converges") {
  // Count the ops of the scenario once.
  uint64_t total = 0;
  {
    TempDir t(TempDir::kFast);
    PutBlobs(t.path(), V1());
    PutBlobs(t.path(), V2());
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
    FaultFileSystem ffs(storage::RealFileSystem());
    REQUIRE(Scenario(&ffs, t.path(), V2()).ok());
    total = ffs.TotalCount();
  }
  REQUIRE(total > 10);
  int cases = 0, failed_cleanly = 0;
  for (int err : {EIO, ENOSPC}) {
    for (bool persistent : {false, true}) {
      for (uint64_t n = 1; n <= total; ++n) {
        CAPTURE(n);
        CAPTURE(err);
        CAPTURE(persistent);
        TempDir t(TempDir::kFast);
        PutBlobs(t.path(), V1());
        PutBlobs(t.path(), V2());
        REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
        FaultFileSystem ffs(storage::RealFileSystem());
        ffs.FailNthAny(n, err, persistent);
        Status s = Scenario(&ffs, t.path(), V2());
        ++cases;
        if (!s.ok()) {
          ++failed_cleanly;
          CHECK(s.code() == (err == ENOSPC ? StatusCode::kNoSpace : StatusCode::kIOError));
          CHECK(s.message().find(t.path()) != std::string::npos);
        }
        CHECK(OldOrNew(t.path()));
        ffs.ClearFaults();
        REQUIRE(Scenario(&ffs, t.path(), V2()).ok());
        CHECK(ReadTree(ModelDir(t.path())) == V2());
        CHECK(NoLeftovers(t.path()));
        CHECK(Exists(t / "tiny-model"));
      }
    }
  }
  MESSAGE("I/O-error cases: " << cases << ", failed cleanly: " << failed_cleanly
                              << ", ops per scenario: " << total);
  CHECK(failed_cleanly > 0);
}

namespace {
// Runs the scenario in a forked child that dies at op `point`: by _exit (kill -9 model: the
// page cache survives), or after DropUnsynced (power loss: only what was synced survives).
void CrashAt(const std::string& root, const Tree& target, uint64_t point, bool power_loss,
             bool no_exchange = false, bool no_links = false) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FaultFileSystem ffs(storage::RealFileSystem());
    // The update's first rename is the exchange: EINVAL = "not supported here".
    if (no_exchange) ffs.FailNth(FsOp::kRename, 1, EINVAL);
    if (no_links) ffs.FailNth(FsOp::kLink, 1, EXDEV, /*persistent=*/true);
    ffs.SetHook([&](FsOp, uint64_t index, const std::string&) {
      if (index != point) return;
      if (power_loss) (void)ffs.DropUnsynced(FaultFileSystem::LossMode::kGarbage);
      ::_exit(0);
    });
    Status s = Scenario(&ffs, root, target);
    ::_exit(s.ok() ? 3 : 4);  // reached the end: the point was past the last op
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
}  // namespace

TEST_CASE("crash at every op of an update: the model dir is wholly old or wholly new") {
  uint64_t total = 0;
  {
    TempDir t(TempDir::kFast);
    PutBlobs(t.path(), V1());
    PutBlobs(t.path(), V2());
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
    FaultFileSystem ffs(storage::RealFileSystem());
    REQUIRE(Scenario(&ffs, t.path(), V2()).ok());
    total = ffs.TotalCount();
  }
  int points = 0, old_seen = 0, new_seen = 0;
  for (bool power_loss : {false, true}) {
    for (uint64_t i = 1; i <= total; ++i) {
      CAPTURE(i);
      CAPTURE(power_loss);
      TempDir t(TempDir::kFast);
      PutBlobs(t.path(), V1());
      PutBlobs(t.path(), V2());
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
      CrashAt(t.path(), V2(), i, power_loss);
      ++points;
      auto tree = ReadTree(ModelDir(t.path()));
      bool is_old = tree == V1(), is_new = tree == V2();
      CHECK(OldOrNew(t.path()));
      old_seen += is_old;
      new_seen += is_new;
      CHECK(Exists(t / "tiny-model"));  // the marker stays valid throughout an update
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V2()).ok());
      CHECK(ReadTree(ModelDir(t.path())) == V2());
      CHECK(NoLeftovers(t.path()));
    }
  }
  MESSAGE("crash points: " << points << " (" << total << " ops x {kill, power loss}), old "
                           << old_seen << ", new " << new_seen);
  CHECK(old_seen > 0);
  CHECK(new_seen > 0);
}

TEST_CASE("crash at every op of a first materialization: absent or complete") {
  uint64_t total = 0;
  {
    TempDir t(TempDir::kFast);
    PutBlobs(t.path(), V1());
    FaultFileSystem ffs(storage::RealFileSystem());
    REQUIRE(Scenario(&ffs, t.path(), V1()).ok());
    total = ffs.TotalCount();
  }
  for (bool power_loss : {false, true}) {
    for (uint64_t i = 1; i <= total; ++i) {
      CAPTURE(i);
      TempDir t(TempDir::kFast);
      PutBlobs(t.path(), V1());
      CrashAt(t.path(), V1(), i, power_loss);
      auto tree = ReadTree(ModelDir(t.path()));
      CHECK((!tree || tree == V1()));
      if (!tree) CHECK_FALSE(Exists(t / "tiny-model"));
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
      CHECK(ReadTree(ModelDir(t.path())) == V1());
      CHECK(NoLeftovers(t.path()));
    }
  }
  MESSAGE("first-materialization crash points: " << 2 * total);
}

TEST_CASE("an interrupted two-rename swap is restored by CleanStaging") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V1());
  REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
  fs::rename(ModelDir(t.path()), t / "models/acme/.tiny-model.old");
  fs::create_directories(t / "models/acme/.tiny-model.staging/partial");
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  auto obs = Observe(**root, kRepo, {});
  REQUIRE(obs.ok());
  CHECK(obs->staging_exists);
  CHECK_FALSE(obs->model_dir_exists);
  Materializer m(**root, **blobs);
  REQUIRE(m.CleanStaging(kRepo).ok());
  CHECK(ReadTree(ModelDir(t.path())) == V1());
  CHECK(NoLeftovers(t.path()));
}

#include "engine/planner.h"

TEST_CASE("Observe + MakePlan on a real root: done after materialize, and sees damage") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V2());
  REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V2()).ok());
  State state;
  RepoState& repo = state.repos[kRepo];
  repo.repo = kRepo;
  repo.active_commit = std::string(40, 'c');
  repo.marker = true;
  repo.model_id = "tiny-model";
  PlanInput in{kRepo, repo.active_commit, "tiny-model", {}};
  for (const auto& [p, c] : V2()) {
    repo.materialized[p] = IdOf(c);
    state.blobs[IdOf(c)] = c.size();
    v1::FileEntry e;
    e.set_path(p);
    e.set_size(c.size());
    e.set_git_oid(IdOf(c));
    in.files.push_back(e);
  }
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto obs = Observe(**root, kRepo, {"tiny-model"});
  REQUIRE(obs.ok());
  auto plan = MakePlan(in, state, *obs);
  REQUIRE(plan.ok());
  CHECK_MESSAGE(plan->NothingToDo(), DescribePlan(*plan));

  // A file replaced by a copy, a stray symlink, a partial on disk: all seen.
  const std::string cfg = ModelDir(t.path()) + "/config.json";
  fs::remove(cfg);
  Spit(cfg, "{\"v\": 2}");
  fs::create_symlink("/etc/passwd", ModelDir(t.path()) + "/stray");
  Spit(t / ".modelsync/partial/12", "abc");
  obs = Observe(**root, kRepo, {"tiny-model"});
  REQUIRE(obs.ok());
  CHECK(obs->model_files["config.json"].blob_id.empty());
  CHECK(obs->model_files["stray"].type == ObservedFile::Type::kSymlink);
  CHECK(obs->partials == std::map<uint64_t, uint64_t>{{12, 3}});
  plan = MakePlan(in, state, *obs);
  REQUIRE(plan.ok());
  CHECK(plan->build_dir);
  CHECK(plan->fetch_bytes == 0);
  CHECK_FALSE(plan->write_marker);  // the current revision still counts as complete
}

TEST_CASE("Observe of an empty root creates nothing") {
  TempDir t(TempDir::kFast);
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto obs = Observe(**root, kRepo, {"tiny-model"});
  REQUIRE(obs.ok());
  CHECK(obs->blobs.empty());
  CHECK_FALSE(obs->model_dir_exists);
  CHECK_FALSE(Exists(t / ".modelsync"));
  CHECK_FALSE(Exists(t / "models"));
  CHECK(Observe(**root, "not a repo", {}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("without RENAME_EXCHANGE: two renames, and a crash anywhere is recovered") {
  uint64_t total = 0;
  {
    TempDir t(TempDir::kFast);
    PutBlobs(t.path(), V1());
    PutBlobs(t.path(), V2());
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
    FaultFileSystem ffs(storage::RealFileSystem());
    ffs.FailNth(FsOp::kRename, 1, EINVAL);
    REQUIRE(Scenario(&ffs, t.path(), V2()).ok());
    CHECK(ffs.InjectedCount() == 1);
    CHECK(ReadTree(ModelDir(t.path())) == V2());
    CHECK(NoLeftovers(t.path()));
    total = ffs.TotalCount();
  }
  int between = 0;
  for (bool power_loss : {false, true}) {
    for (uint64_t i = 1; i <= total; ++i) {
      CAPTURE(i);
      CAPTURE(power_loss);
      TempDir t(TempDir::kFast);
      PutBlobs(t.path(), V1());
      PutBlobs(t.path(), V2());
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
      CrashAt(t.path(), V2(), i, power_loss, /*no_exchange=*/true);
      auto tree = ReadTree(ModelDir(t.path()));
      if (!tree) {  // between the two renames: the old tree waits at .old
        ++between;
        CHECK(ReadTree(t / "models/acme/.tiny-model.old") == V1());
      } else {
        CHECK((tree == V1() || tree == V2()));
      }
      auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
      REQUIRE(root.ok());
      auto blobs = storage::BlobStore::Open(**root);
      REQUIRE(blobs.ok());
      Materializer m(**root, **blobs);
      REQUIRE(m.CleanStaging(kRepo).ok());
      tree = ReadTree(ModelDir(t.path()));
      CHECK((tree == V1() || tree == V2()));
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V2()).ok());
      CHECK(ReadTree(ModelDir(t.path())) == V2());
      CHECK(NoLeftovers(t.path()));
    }
  }
  CHECK(between > 0);
  MESSAGE("no-exchange crash points: " << 2 * total << ", between the renames: " << between);
}

TEST_CASE("without hard links (copies): a crash at any op leaves old or new, and converges") {
  uint64_t total = 0;
  {
    TempDir t(TempDir::kFast);
    PutBlobs(t.path(), V1());
    PutBlobs(t.path(), V2());
    REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
    FaultFileSystem ffs(storage::RealFileSystem());
    ffs.FailNth(FsOp::kLink, 1, EXDEV, /*persistent=*/true);
    REQUIRE(Scenario(&ffs, t.path(), V2()).ok());
    CHECK(ffs.Count(FsOp::kWrite) > 0);  // really copied
    total = ffs.TotalCount();
  }
  for (bool power_loss : {false, true}) {
    for (uint64_t i = 1; i <= total; ++i) {
      CAPTURE(i);
      CAPTURE(power_loss);
      TempDir t(TempDir::kFast);
      PutBlobs(t.path(), V1());
      PutBlobs(t.path(), V2());
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
      CrashAt(t.path(), V2(), i, power_loss, false, /*no_links=*/true);
      CHECK(OldOrNew(t.path()));
      REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V2()).ok());
      CHECK(ReadTree(ModelDir(t.path())) == V2());
      CHECK(NoLeftovers(t.path()));
    }
  }
  MESSAGE("copy-fallback crash points: " << 2 * total);
}
