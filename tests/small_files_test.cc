// engine::SmallFileWriter: verified small files written and adopted into the blob store off
// the control thread (engine/small_files.h).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/materializer.h"
#include "engine/small_files.h"
#include "engine/transfer_state.h"
#include "storage/blob_store.h"
#include "storage/fault_file_system.h"
#include "storage/file_system.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using engine::SmallFileWriter;
using engine::Xfer;

namespace {

std::vector<std::string> SmallFileLeftovers(BlobStore& blobs) {
  auto l = blobs.ListLeftovers();
  REQUIRE(l.ok());
  std::vector<std::string> out;
  for (auto& [name, size] : *l) out.push_back(name);
  return out;
}

// A blob store in a fresh directory, on a file system that can fail on purpose.
struct Store {
  modelsync::testing::TempDir t;
  FaultFileSystem fs{RealFileSystem()};
  std::unique_ptr<Dir> root;
  std::unique_ptr<BlobStore> blobs;
  Store() {
    auto r = fs.OpenRoot(t.path(), false);
    REQUIRE(r.ok());
    root = std::move(*r);
    auto b = BlobStore::Open(*root);
    REQUIRE(b.ok());
    blobs = std::move(*b);
  }
};

// Holds every sync of `fs` until Release(): a job can be caught in the middle of its sync.
// Removes its hook when it goes (after the writer's Drain: declared before the writer).
class SyncGate {
 public:
  explicit SyncGate(FaultFileSystem& fs) : fs_(fs) {
    fs_.SetHook([this](FsOp op, uint64_t, const std::string&) {
      if (op != FsOp::kSync) return;
      std::unique_lock<std::mutex> lock(mu_);
      in_sync_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return release_; });
    });
  }
  ~SyncGate() {
    Release();
    fs_.SetHook(nullptr);
  }
  void WaitInSync() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_sync_; });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      release_ = true;
    }
    cv_.notify_all();
  }

 private:
  FaultFileSystem& fs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool in_sync_ = false, release_ = false;
};

}  // namespace

TEST_CASE("SmallFileWriter: written and adopted in order, read-only blobs, recorded only when taken") {
  Store st;
  std::atomic<int> wakes{0};
  SmallFileWriter w(*st.blobs, [&] { ++wakes; });
  const std::string a(40, 'a'), b(64, 'b');
  Xfer xa, xb, xb2;
  w.Write(a, "dir/a.txt", "alpha");
  w.Write(b, "b.json", "beta");
  w.Write(b, "copy/b.json", "beta");  // the same content under a second path
  w.Adopt({&xa}, {a});
  w.Adopt({&xb, &xb2}, {b, b});
  w.Drain();
  CHECK(w.Pending());  // adopted, not taken yet: the caller has not recorded them
  CHECK(wakes.load() == 2);  // once per adoption
  std::vector<Xfer*> got;
  REQUIRE(w.TakeAdopted(&got).ok());
  CHECK(got == std::vector<Xfer*>{&xa, &xb, &xb2});
  CHECK_FALSE(w.Pending());
  CHECK(modelsync::testing::Slurp(st.t / (".modelsync/blobs/" + a)) == "alpha");
  CHECK(modelsync::testing::Slurp(st.t / (".modelsync/blobs/" + b)) == "beta");
  struct stat sb{};
  REQUIRE(::stat((st.t / (".modelsync/blobs/" + a)).c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0444);
  CHECK(SmallFileLeftovers(*st.blobs).empty());
  got.clear();
  REQUIRE(w.TakeAdopted(&got).ok());
  CHECK(got.empty());
}

TEST_CASE("SmallFileWriter: Adopting() from an adoption's queuing until its wake") {
  // The runner holds the next batch back while this is true (group commit, SmallBatchDue).
  Store st;
  SyncGate gate(st.fs);
  std::atomic<bool> adopting_at_wake{true};
  SmallFileWriter* writer = nullptr;
  SmallFileWriter w(*st.blobs, [&] { adopting_at_wake = writer->Adopting(); });
  writer = &w;
  const std::string a(40, 'a');
  Xfer xa;
  CHECK_FALSE(w.Adopting());
  w.Write(a, "a.txt", "alpha");
  CHECK_FALSE(w.Adopting());  // a write is not an adoption
  w.Adopt({&xa}, {a});
  CHECK(w.Adopting());  // queued
  gate.WaitInSync();
  CHECK(w.Adopting());  // running: held in its sync
  gate.Release();
  w.Drain();
  CHECK_FALSE(w.Adopting());
  CHECK_FALSE(adopting_at_wake.load());  // over before its wake: the woken runner may adopt
}

TEST_CASE("SmallFileWriter: a failed write stops the jobs after it; what was adopted is handed back") {
  Store st;
  SmallFileWriter w(*st.blobs, [] {});
  const std::string a(40, 'a'), b(40, 'b'), c(40, 'c');
  Xfer xa, xb, xc;
  st.fs.ResetCounts();
  st.fs.FailNth(FsOp::kWrite, 2, ENOSPC);  // b's bytes
  w.Write(a, "a.txt", "alpha");
  w.Adopt({&xa}, {a});
  w.Write(b, "sub/b.txt", "beta");
  w.Write(c, "c.txt", "gamma");
  w.Adopt({&xb, &xc}, {b, c});
  w.Drain();
  std::vector<Xfer*> got;
  Status s = w.TakeAdopted(&got);
  CHECK(s.code() == StatusCode::kNoSpace);
  CHECK(s.message().find("sub/b.txt") != std::string::npos);  // names the repo file
  CHECK(got == std::vector<Xfer*>{&xa});  // a is a blob: the caller still records it
  CHECK(st.blobs->Has(a));
  CHECK_FALSE(st.blobs->Has(b));
  CHECK_FALSE(st.blobs->Has(c));
  CHECK_FALSE(modelsync::testing::Exists(st.t / ".modelsync/blobs/.tmp-" + c));  // dropped after the failure
  got.clear();
  CHECK(w.TakeAdopted(&got).code() == StatusCode::kNoSpace);  // and stays failed
  CHECK(got.empty());
}

TEST_CASE("SmallFileWriter: woken by an adoption, the caller takes it and finds nothing pending") {
  // The control thread, woken, takes the adopted files and waits again only while Pending():
  // a job still counted as running at its own wake would leave it waiting for a wake that
  // never comes (the end of a pull stalled on its 50 ms timeout).
  Store st;
  SmallFileWriter* writer = nullptr;
  std::vector<Xfer*> taken;
  std::atomic<int> pending_at_wake{-1};
  SmallFileWriter w(*st.blobs, [&] {
    REQUIRE(writer->TakeAdopted(&taken).ok());
    pending_at_wake = writer->Pending() ? 1 : 0;
  });
  writer = &w;
  const std::string a(40, 'a');
  Xfer xa;
  w.Write(a, "a.txt", "alpha");
  w.Adopt({&xa}, {a});
  w.Drain();  // returns after the wake
  CHECK(pending_at_wake.load() == 0);
  CHECK(taken == std::vector<Xfer*>{&xa});
  CHECK_FALSE(w.Pending());
}

TEST_CASE("SmallFileWriter: a failure after the caller took the adopted files keeps it pending until taken") {
  // The control thread takes the adopted files, then asks Pending(); an adoption whose sync
  // fails in between must not read as "nothing pending": the runner would finish the pull
  // without the failure (a failed fsync lost; CI saw the build then miss README.md's blob).
  Store st;
  SyncGate gate(st.fs);
  st.fs.ResetCounts();
  st.fs.FailNth(FsOp::kSync, 1, EIO);
  SmallFileWriter w(*st.blobs, [] {});
  const std::string a(40, 'a');
  Xfer xa;
  w.Write(a, "a.txt", "alpha");
  w.Adopt({&xa}, {a});
  gate.WaitInSync();
  std::vector<Xfer*> got;
  REQUIRE(w.TakeAdopted(&got).ok());  // taken while the adoption is in its sync
  CHECK(got.empty());
  gate.Release();
  w.Drain();
  CHECK(w.Pending());  // the failure is not handed over yet
  Status s = w.TakeAdopted(&got);
  CHECK(s.code() == StatusCode::kIOError);
  CHECK(got.empty());
  CHECK_FALSE(w.Pending());
  CHECK_FALSE(st.blobs->Has(a));
}

TEST_CASE("SmallFileWriter: a read-only leftover of a crashed run is replaced, not a failure") {
  // A run killed between a file's write and its adoption leaves blobs/.tmp-<id>, read-only:
  // the exclusive create fails on it (EEXIST; a create may also be refused, EACCES, injected
  // here since the suite may run as root), and the leftover is removed and made again.
  for (int injected : {0, EACCES}) {
    CAPTURE(injected);
    Store st;
    const std::string a(40, 'a');
    {
      auto f = st.blobs->dir().OpenFile(".tmp-" + a, OpenMode::kCreateTruncate, 0444);
      REQUIRE(f.ok());
      REQUIRE((*f)->PWrite(0, "stale bytes").ok());
    }
    SmallFileWriter w(*st.blobs, [] {});
    Xfer xa;
    st.fs.ResetCounts();
    if (injected) st.fs.FailNth(FsOp::kCreate, 1, injected);
    w.Write(a, "a.txt", "alpha");
    w.Adopt({&xa}, {a});
    w.Drain();
    std::vector<Xfer*> got;
    REQUIRE(w.TakeAdopted(&got).ok());
    CHECK(got == std::vector<Xfer*>{&xa});
    CHECK(modelsync::testing::Slurp(st.t / (".modelsync/blobs/" + a)) == "alpha");
    struct stat sb{};
    REQUIRE(::stat((st.t / (".modelsync/blobs/" + a)).c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0444);
  }
}

TEST_CASE("SmallFileWriter: an adoption waits for the writes queued before it") {
  // An adoption must find every file queued before it written, however the jobs are run.
  // Writes are slowed here (1 ms each) so that an adoption that did not wait would rename
  // files that are not there yet.
  Store st;
  st.fs.SetHook([](FsOp op, uint64_t, const std::string&) {
    if (op == FsOp::kCreate) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  SmallFileWriter w(*st.blobs, [] {});
  std::vector<Xfer> xs(40);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    char id[41];
    std::snprintf(id, sizeof id, "%040d", i);
    ids.push_back(id);
  }
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<Xfer*> files;
    std::vector<std::string> batch_ids;
    for (int i = batch * 10; i < batch * 10 + 10; ++i) {
      w.Write(ids[i], "f" + std::to_string(i), "content " + std::to_string(i));
      files.push_back(&xs[i]);
      batch_ids.push_back(ids[i]);
    }
    w.Adopt(std::move(files), std::move(batch_ids));
  }
  w.Drain();
  st.fs.SetHook(nullptr);
  std::vector<Xfer*> got;
  REQUIRE(w.TakeAdopted(&got).ok());
  REQUIRE(got.size() == 40);
  for (int i = 0; i < 40; ++i) {
    CHECK(got[i] == &xs[i]);  // handed back in the order adopted
    CHECK(modelsync::testing::Slurp(st.t / (".modelsync/blobs/" + ids[i])) ==
          "content " + std::to_string(i));
  }
  CHECK(SmallFileLeftovers(*st.blobs).empty());
}

namespace {

uint64_t InodeOf(const std::string& path) {
  struct stat sb{};
  REQUIRE(::stat(path.c_str(), &sb) == 0);
  return sb.st_ino;
}

// Writes "alpha" as a.txt (content `id`), adopts it, waits: the files handed back.
std::vector<Xfer*> WriteAlpha(SmallFileWriter& w, const std::string& id, Xfer* x) {
  w.Write(id, "a.txt", "alpha");
  w.Adopt({x}, {id});
  w.Drain();
  std::vector<Xfer*> got;
  REQUIRE(w.TakeAdopted(&got).ok());
  return got;
}

}  // namespace

TEST_CASE("SmallFileWriter into the staging tree: written under its path, the blob a link to it made after the sync") {
  Store st;
  engine::Materializer tree(*st.root, *st.blobs);
  REQUIRE(tree.Begin("org/m").ok());
  // Every side effect in order: (op, path).
  std::mutex mu;
  std::vector<std::pair<FsOp, std::string>> ops;
  st.fs.SetHook([&](FsOp op, uint64_t, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu);
    ops.push_back({op, path});
  });
  std::vector<std::string> hooked;
  SmallFileWriter w(
      *st.blobs, [] {}, [&](Xfer*) { hooked.push_back("adopted"); }, &tree);
  const std::string a(40, 'a'), b(64, 'b');
  const std::string staging = st.t / "models/org/.m.staging";
  const std::string blobs = st.t / ".modelsync/blobs";
  Xfer xa, xb, xb2;
  w.Write(a, "dir/a.txt", "alpha");
  w.Write(b, "b.json", "beta");
  w.Write(b, "copy/b.json", "beta");  // the same content under a second path
  w.Drain();
  // Written where it will be, not a blob yet: no name in blobs/ before the bytes are durable.
  CHECK(modelsync::testing::Slurp(staging + "/dir/a.txt") == "alpha");
  CHECK(modelsync::testing::Slurp(staging + "/copy/b.json") == "beta");
  CHECK_FALSE(st.blobs->Has(a));
  CHECK_FALSE(st.blobs->Has(b));
  w.Adopt({&xa}, {a});
  w.Adopt({&xb, &xb2}, {b, b});
  w.Drain();
  st.fs.SetHook(nullptr);
  std::vector<Xfer*> got;
  REQUIRE(w.TakeAdopted(&got).ok());
  CHECK(got == std::vector<Xfer*>{&xa, &xb, &xb2});
  CHECK(hooked.size() == 3);
  // One inode per content: the blob and every model file of it.
  CHECK(modelsync::testing::Slurp(blobs + "/" + a) == "alpha");
  CHECK(InodeOf(blobs + "/" + a) == InodeOf(staging + "/dir/a.txt"));
  CHECK(InodeOf(blobs + "/" + b) == InodeOf(staging + "/b.json"));
  CHECK(InodeOf(blobs + "/" + b) == InodeOf(staging + "/copy/b.json"));
  struct stat sb{};
  REQUIRE(::stat((blobs + "/" + b).c_str(), &sb) == 0);
  CHECK(sb.st_nlink == 3);
  CHECK((sb.st_mode & 0777) == 0444);
  CHECK(SmallFileLeftovers(*st.blobs).empty());  // no temporaries
  // Each link into blobs/ comes after a sync that followed the last write.
  size_t last_write = 0, last_sync = 0, links = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& [op, path] = ops[i];
    if (op == FsOp::kWrite) last_write = i + 1;
    if (op == FsOp::kSync) last_sync = i + 1;
    if (op == FsOp::kLink && path.rfind(blobs + "/", 0) == 0) {
      ++links;
      CHECK(last_sync > last_write);
    }
    if (op == FsOp::kRename) FAIL("a staged file is never renamed: " << path);
  }
  CHECK(links == 3);  // b's second path found the blob there, then linked the tree to it
  // The tree is the one Materialize builds: nothing is linked twice.
  engine::MaterializeStats ms;
  REQUIRE(tree.Materialize("org/m", {{"b.json", b}, {"copy/b.json", b}, {"dir/a.txt", a}}, &ms)
              .ok());
  CHECK(ms.linked == 3);
  CHECK(ms.copied == 0);
  CHECK(InodeOf(blobs + "/" + a) == InodeOf(st.t / "models/org/m/dir/a.txt"));
}

TEST_CASE("SmallFileWriter into the staging tree: where hard links are refused, the blob is a copy") {
  Store st;
  engine::Materializer tree(*st.root, *st.blobs);
  REQUIRE(tree.Begin("org/m").ok());
  st.fs.ResetCounts();
  st.fs.FailNth(FsOp::kLink, 1, EPERM, /*persistent=*/true);  // exFAT, say
  SmallFileWriter w(*st.blobs, [] {}, {}, &tree);
  const std::string a(40, 'a');
  Xfer xa;
  CHECK(WriteAlpha(w, a, &xa) == std::vector<Xfer*>{&xa});
  const std::string blob = st.t / (".modelsync/blobs/" + a);
  const std::string staged = st.t / "models/org/.m.staging/a.txt";
  CHECK(modelsync::testing::Slurp(blob) == "alpha");
  CHECK(modelsync::testing::Slurp(staged) == "alpha");
  CHECK(InodeOf(blob) != InodeOf(staged));
  struct stat sb{};
  REQUIRE(::stat(blob.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0444);
  CHECK(SmallFileLeftovers(*st.blobs).empty());
  engine::MaterializeStats ms;
  REQUIRE(tree.Materialize("org/m", {{"a.txt", a}}, &ms).ok());
  CHECK(ms.copied == 1);
  CHECK(modelsync::testing::Slurp(st.t / "models/org/m/a.txt") == "alpha");
}

TEST_CASE("SmallFileWriter with a tree not begun: temporary blobs, linked in by the hook") {
  Store st;
  engine::Materializer tree(*st.root, *st.blobs);  // no Begin: Stage refuses
  std::vector<std::string> hooked;
  SmallFileWriter w(*st.blobs, [] {}, [&](Xfer*) { hooked.push_back("adopted"); }, &tree);
  const std::string a(40, 'a');
  Xfer xa;
  CHECK(WriteAlpha(w, a, &xa) == std::vector<Xfer*>{&xa});
  CHECK(modelsync::testing::Slurp(st.t / (".modelsync/blobs/" + a)) == "alpha");
  CHECK(hooked.size() == 1);
  CHECK_FALSE(modelsync::testing::Exists(st.t / "models"));
  CHECK(SmallFileLeftovers(*st.blobs).empty());
}
