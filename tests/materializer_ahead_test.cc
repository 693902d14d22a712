// engine/materializer: a tree built ahead of Materialize (Begin, Add; Stage and Publish, the
// small files' writer's; NoteSynced) ends as the one Materialize builds at once, and is synced
// no more than it must be.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/materializer.h"
#include "materializer_trees.h"
#include "storage/blob_store.h"
#include "storage/fault_file_system.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::engine;
using namespace modelsync::testing::trees;
using modelsync::storage::FaultFileSystem;
using modelsync::storage::FsOp;
using modelsync::testing::Exists;
using modelsync::testing::TempDir;

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
