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

namespace {

const std::string kRepo = "acme/tiny-model";
using Tree = std::map<std::string, std::string>;  // path -> content

Tree V1() {
  return {{"config.json", "{\"v\": 1}"},
          {"tokenizer_config.json", "tok v1"},
          {"model.safetensors", std::string(100000, 'w')},
          {"sub/dir/a.txt", "a"}};
}
Tree V2() {
  return {{"config.json", "{\"v\": 2}"},
          {"model.safetensors", std::string(100000, 'w')},
          {"sub/dir/a.txt", "a"},
          {"sub/new.txt", "new"}};
}

std::string IdOf(const std::string& content) { return GitBlobSha1Hex(content); }

// Puts every file's content in the blob store (directly; the store is the test's fixture).
void PutBlobs(const std::string& root, const Tree& t) {
  for (const auto& [p, c] : t) {
    std::string path = root + "/.modelsync/blobs/" + IdOf(c);
    if (Exists(path)) continue;
    Spit(path, c);
    ::chmod(path.c_str(), 0444);
  }
}

std::vector<MaterialFile> Files(const Tree& t) {
  std::vector<MaterialFile> out;
  for (const auto& [p, c] : t) out.push_back({p, IdOf(c)});
  return out;
}

// The tree under dir as path -> content ("<symlink>" for symlinks); nullopt if dir is absent.
std::optional<Tree> ReadTree(const std::string& dir) {
  if (!Exists(dir)) return std::nullopt;
  Tree t;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_symlink())
      t[rel] = "<symlink>";
    else if (it->is_regular_file())
      t[rel] = Slurp(it->path().string());
  }
  return t;
}

std::string ModelDir(const std::string& root) { return root + "/models/acme/tiny-model"; }

// The scenario under test: materialize `t` and write the marker.
Status Scenario(FileSystem* fsys, const std::string& root, const Tree& t) {
  MS_ASSIGN_OR_RETURN(auto r, fsys->OpenRoot(root, false));
  MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*r));
  Materializer m(*r, *blobs);
  MS_RETURN_IF_ERROR(m.Materialize(kRepo, Files(t)));
  return m.WriteMarker("tiny-model");
}

bool NoLeftovers(const std::string& root) {
  return !Exists(root + "/models/acme/.tiny-model.staging") &&
         !Exists(root + "/models/acme/.tiny-model.old");
}

// After an interrupted update: the model dir is wholly old or wholly new. Where the swap is two
// renames (the posix build: docs/PLATFORM.md "The revision swap"), also: absent, with the old
// tree whole at .tiny-model.old (the next Materialize or CleanStaging puts it back).
bool OldOrNew(const std::string& root) {
  auto tree = ReadTree(ModelDir(root));
  if (tree == V1() || tree == V2()) return true;
  return !tree && std::string(platform::Name()) == "posix" &&
         ReadTree(root + "/models/acme/.tiny-model.old") == V1();
}

}  // namespace

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

TEST_CASE("a tree built ahead (Begin, Add) holds the same files as one built at once") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V1());
  PutBlobs(t.path(), V2());
  REQUIRE(Scenario(storage::RealFileSystem(), t.path(), V1()).ok());
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  {
    // A crash after some files were added: the old tree is untouched; the next run's
    // Materialize starts over from a clean staging directory.
    Materializer m(**root, **blobs);
    REQUIRE(m.Begin(kRepo).ok());
    REQUIRE(m.Add("sub/new.txt", IdOf("new")).ok());
    CHECK(Exists(t.path() + "/models/acme/.tiny-model.staging/sub/new.txt"));
    CHECK(ReadTree(ModelDir(t.path())) == V1());
  }
  Materializer m(**root, **blobs);
  REQUIRE(m.Begin(kRepo).ok());
  CHECK_FALSE(Exists(t.path() + "/models/acme/.tiny-model.staging/sub/new.txt"));  // started over
  // Added in any order, some twice; a refused one is not recorded (Materialize links it).
  REQUIRE(m.Add("sub/new.txt", IdOf("new")).ok());
  REQUIRE(m.Add("config.json", IdOf("{\"v\": 2}")).ok());
  REQUIRE(m.Add("sub/new.txt", IdOf("new")).ok());
  CHECK(m.Add("../escape", IdOf("new")).code() == StatusCode::kInvalidArgument);
  CHECK(m.Add("sub/dir/a.txt", std::string(40, 'f')).IsNotFound());  // no such blob
  CHECK(ReadTree(ModelDir(t.path())) == V1());  // nothing visible before the swap
  MaterializeStats st;
  REQUIRE(m.Materialize(kRepo, Files(V2()), &st).ok());
  CHECK(ReadTree(ModelDir(t.path())) == V2());
  CHECK(st.linked + st.cloned == V2().size());  // each file once
  CHECK(NoLeftovers(t.path()));
  // Begin then Materialize of another revision with nothing added: the same as Materialize.
  REQUIRE(m.Begin(kRepo).ok());
  REQUIRE(m.Materialize(kRepo, Files(V1())).ok());
  CHECK(ReadTree(ModelDir(t.path())) == V1());
  CHECK(NoLeftovers(t.path()));
  CHECK(m.Add("config.json", IdOf("{\"v\": 2}")).code() == StatusCode::kInvalidArgument);  // no Begin
}

TEST_CASE("a file staged and never published (its adoption failed) is replaced by Materialize") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V1());
  auto root = storage::RealFileSystem()->OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  Materializer m(**root, **blobs);
  CHECK(m.Stage("config.json").status().code() == StatusCode::kInvalidArgument);  // no Begin
  REQUIRE(m.Begin(kRepo).ok());
  {
    auto f = m.Stage("config.json");
    REQUIRE(f.ok());
    REQUIRE((*f)->PWrite(0, "bytes never made a blob").ok());
  }
  CHECK(m.Stage("config.json").status().code() == StatusCode::kInvalidArgument);  // taken
  CHECK(m.Stage("../escape").status().code() == StatusCode::kInvalidArgument);
  CHECK(m.Publish("sub/new.txt", IdOf("new")).code() == StatusCode::kInvalidArgument);  // not staged
  MaterializeStats st;
  REQUIRE(m.Materialize(kRepo, Files(V1()), &st).ok());
  CHECK(ReadTree(ModelDir(t.path())) == V1());
  CHECK(st.linked == V1().size());
  CHECK(NoLeftovers(t.path()));
}

TEST_CASE("a tree synced whole (NoteSynced) is not fsynced again; what changed since is") {
  TempDir t(TempDir::kFast);
  PutBlobs(t.path(), V2());
  FaultFileSystem ffs(storage::RealFileSystem());
  auto root = ffs.OpenRoot(t.path(), false);
  REQUIRE(root.ok());
  auto blobs = storage::BlobStore::Open(**root);
  REQUIRE(blobs.ok());
  Materializer m(**root, **blobs);
  REQUIRE(m.Begin(kRepo).ok());
  REQUIRE(m.Add("config.json", IdOf("{\"v\": 2}")).ok());
  REQUIRE(m.Add("sub/dir/a.txt", IdOf("a")).ok());
  // A pull's small files' writer syncs the file system after its batch; the posix build
  // cannot (docs/PLATFORM.md), and then every directory is synced as before.
  const bool whole = (*root)->SyncFileSystem().ok();
  if (whole) m.NoteSynced();
  REQUIRE(m.Add("sub/new.txt", IdOf("new")).ok());  // changes sub/ after the sync
  std::vector<std::string> synced;
  const std::string staging = t.path() + "/models/acme/.tiny-model.staging";
  ffs.SetHook([&](FsOp op, uint64_t, const std::string& path) {
    if (op == FsOp::kSync && path.rfind(staging, 0) == 0) synced.push_back(path);
  });
  REQUIRE(m.Materialize(kRepo, Files(V2())).ok());  // links model.safetensors into the top
  ffs.SetHook(nullptr);
  std::sort(synced.begin(), synced.end());
  if (whole)
    CHECK(synced == std::vector<std::string>{staging, staging + "/sub"});
  else
    CHECK(synced == std::vector<std::string>{staging, staging + "/sub", staging + "/sub/dir"});
  // Power lost now: nothing of the new tree is undone.
  REQUIRE(ffs.DropUnsynced().ok());
  CHECK(ReadTree(ModelDir(t.path())) == V2());
}
