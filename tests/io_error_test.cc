// I/O-error loops over a whole pull-and-update (issue #6), in the manner of SQLite's I/O-error
// tests: the scenario (pull fixtures/versions at v1, then at main) runs in-process through a
// storage::FaultFileSystem. A clean run counts the writes (File::PWrite) and syncs (File and
// Dir syncs); then, for every kind in {write, sync} x errno in {EIO, ENOSPC} x {transient,
// persistent} x N in 1..count, a fresh root runs the scenario with the Nth op of that kind
// failing. After each faulted run:
//   1. the pull succeeded (the fault was retried by the engine, or not reached: this run made
//      fewer ops than the counting run), or it failed with kIOError (EIO) / kNoSpace (ENOSPC)
//      and a message that names the path and says what to do ("run pull again");
//   2. nothing unverified was promoted: models/ holds exactly one revision's verified files,
//      the marker exists only beside a complete revision (DESIGN.md invariant 2), and every
//      blob hashes to its name;
//   3. no event claims bytes that are missing or wrong (CheckLogClaims = support/invariants.h's
//      CheckRootInvariants + a raw-log scan for hash failures). A failed fsync zeroes the
//      file's unsynced bytes (FaultFileSystem), so a runner that "fsyncs again and trusts it"
//      is caught here; and no transfer may have failed its hash (the hub serves good bytes);
//   4. the next run without faults converges: pull main succeeds, the model equals the
//      fixture at main and engine::Verify finds nothing wrong.
// Small files are fetched into memory up to the Env's config.small_file_bytes: it is set
// to 4 KiB and the chunk to 16 KiB, so the weights go through a partial file in several ranges.
// CI runs every stride-th N (about 12 per kind); MODELSYNC_IOERR_STRIDE=1 runs every N.
// A second case caps the body rate so the weights are synced mid-transfer (several
// RangesCommitted) and fails each sync of a partial file: the ranges synced before are kept,
// those of the failed sync are lost (and zeroed by FaultFileSystem, so trusting them shows).
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "base/hash.h"
#include "engine/journal.h"
#include "engine/pull_internal.h"
#include "engine/recovery.h"
#include "fixtures/fixtures.h"
#include "storage/fault_file_system.h"
#include "support/emulator.h"
#include "support/invariants.h"

using namespace modelsync;
using namespace modelsync::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kRepo = fixtures::kVersionsRepo;

// The fixture every case here uses: fixtures/versions with 64 KiB weights and 2 small files.
fixtures::FixtureOptions SmallVersions() {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 10;
  fo.small_files = 2;
  fo.only = {"versions"};
  return fo;
}
constexpr uint64_t kSmallFileBytes = 4 << 10;
constexpr uint64_t kChunkBytes = 16 << 10;

// The fixture repo as the checks need it.
struct Expected {
  std::map<std::string, std::string> objects;  // content id -> fixture object path
  std::map<std::string, std::map<std::string, std::string>> commits;  // commit -> path -> id
  std::string v1, main;
  const FixtureDir* fx = nullptr;
};

Expected LoadExpected(const FixtureDir& fx) {
  Expected e;
  e.fx = &fx;
  nlohmann::json rj = fx.RepoJson(kRepo);
  e.v1 = rj["refs"]["v1"].get<std::string>();
  e.main = rj["refs"]["main"].get<std::string>();
  for (const auto& [sha, c] : rj["commits"].items()) {
    for (const auto& f : c["files"]) {
      std::string id = f.contains("lfs_sha256") ? f["lfs_sha256"].get<std::string>()
                                                : f["git_oid"].get<std::string>();
      e.commits[sha][f["path"].get<std::string>()] = id;
      e.objects[id] = fx.path() + "/" + kRepo + "/objects/" + f["object"].get<std::string>();
    }
  }
  return e;
}

std::string HashOf(const std::string& id, const std::string& path) {
  return HashFileHex(id.size() == 64 ? HashKind::kSha256 : HashKind::kGitBlobSha1, path);
}

// Log-vs-disk checks: the shared durable-claims checker (support/invariants.h: committed
// ranges hold the fixture's bytes, verified blobs hash right, models/ holds one revision,
// markers), plus a scan of the raw log: no transfer failed its hash (the hub serves good
// bytes, so a hash failure means bytes were recorded that were not durable). "" or what broke.
std::string CheckLogClaims(const std::string& root, const FixtureDir& fx) {
  std::string out = CheckRootInvariants(root, fx);
  std::string bad;
  Status s = engine::Journal::ScanLog(root, 1, [&](uint64_t seq, const v1::Event& e) {
    if (e.has_transfer_failed() &&
        e.transfer_failed().code() == static_cast<int>(StatusCode::kIntegrity) && bad.empty())
      bad = "event #" + std::to_string(seq) + ": a transfer failed its hash (" +
            e.transfer_failed().reason() + "): bytes were recorded that were not durable";
    return Status::Ok();
  });
  if (!s.ok()) return out + "log scan: " + s.ToString();
  return out + bad;
}

// Files under dir (relative path -> absolute), regular files only; "" if dir is missing.
std::map<std::string, std::string> FilesUnder(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = e.path().string();
  return out;
}

// "" when the files under dir are exactly the commit's, each with its content.
std::string SameAsCommit(const Expected& ex, const std::string& commit, const std::string& dir) {
  auto it = ex.commits.find(commit);
  if (it == ex.commits.end()) return "unknown commit " + commit;
  auto files = FilesUnder(dir);
  if (files.size() != it->second.size())
    return dir + " has " + std::to_string(files.size()) + " files, commit " + commit.substr(0, 8) +
           " has " + std::to_string(it->second.size());
  for (const auto& [path, id] : it->second) {
    auto f = files.find(path);
    if (f == files.end()) return dir + " lacks " + path;
    if (HashOf(id, f->second) != id) return f->second + " is not the verified content";
  }
  return "";
}

// Invariant 2: nothing unverified under models/ or in blobs/, marker only when complete.
std::string CheckPromoted(const Expected& ex, const std::string& root) {
  // Every model file anywhere under models/ (staging included) is some revision's content.
  std::map<std::string, std::string> known;  // path -> ids joined
  for (const auto& [c, files] : ex.commits)
    for (const auto& [p, id] : files) known[p] += id + " ";
  std::string base = root + "/models/fixtures";
  for (const auto& [rel, abs] : FilesUnder(base)) {
    std::string path = rel.substr(rel.find('/') + 1);  // strip versions/ or .versions.staging/
    auto k = known.find(path);
    bool ok = false;
    if (k != known.end()) {
      std::istringstream ids(k->second);
      for (std::string id; ids >> id;) ok |= HashOf(id, abs) == id;
    }
    if (!ok) return abs + " is not verified content of " + kRepo;
  }
  std::string dir = base + "/versions";
  std::error_code ec;
  bool dir_exists = fs::exists(dir, ec);
  std::string v1 = SameAsCommit(ex, ex.v1, dir), main = SameAsCommit(ex, ex.main, dir);
  if (dir_exists && !v1.empty() && !main.empty())
    return "models/" + std::string(kRepo) + " is no complete revision: " + main;
  bool marker = fs::exists(root + "/versions", ec);
  if (marker && !dir_exists) return "marker without a model directory";
  // Every blob file is its content (tmp files are not blobs).
  for (const auto& [name, abs] : FilesUnder(root + "/.modelsync/blobs")) {
    if (name.rfind(".tmp-", 0) == 0 || name.find('/') != std::string::npos) continue;
    if (HashOf(name, abs) != name) return "blob " + abs + " does not hash to its name";
  }
  return "";
}

// How far the log lags the disk after a failed directory fsync (not an invariant breach: a
// crash at the same instant leaves the same state, and the next run records it): "" when the
// log agrees, else what it has not recorded yet.
std::string LogLag(const Expected& ex, const std::string& root) {
  auto j = engine::Journal::Open(root, true);
  if (!j.ok()) return "log does not open: " + j.status().ToString();
  auto rs = (*j)->state().repos.find(kRepo);
  bool marker = fs::exists(root + "/versions");
  if (!marker) return "";
  if (rs == (*j)->state().repos.end() || !rs->second.marker) return "marker written, not recorded";
  std::string dir = root + "/models/fixtures/versions";
  if (SameAsCommit(ex, rs->second.active_commit, dir) != "") return "swap done, not activated";
  return "";
}

struct Scenario {
  std::string hub;
  uint64_t max_rate = 0;  // bytes/s for the faulted runs (0 = unlimited)
  // Runs pull v1 then pull main through fs (nullptr: the real one); stops at the first error.
  Status Run(const std::string& root, storage::FileSystem* fs,
             const std::vector<const char*>& revs = {"v1", "main"}) const {
    engine::Env env = engine::RealEnv();
    if (fs) env.fs = fs;
    env.config.small_file_bytes = kSmallFileBytes;
    env.config.chunk_bytes = kChunkBytes;
    for (const char* rev : revs) {
      engine::PullOptions po;
      po.root = root;
      po.repo = kRepo;
      po.revision = rev;
      po.endpoint = hub;
      po.connections = 2;
      std::atomic<uint64_t> rate{max_rate};
      po.max_rate = &rate;
      auto r = engine::Pull(env, po, nullptr);
      if (!r.ok()) return r.status();
    }
    return Status::Ok();
  }
};

struct Tally {
  uint64_t cases = 0, failed_cleanly = 0, succeeded = 0, not_reached = 0;
  std::set<std::string> retried;               // "write#3 EIO transient" that the pull survived
  std::map<std::string, int> lagging;          // LogLag() -> cases
  std::map<std::string, std::string> samples;  // op + errno -> the first error message seen
  // A partial file's sync failed and the log still holds earlier committed ranges of a live
  // transfer (what was durable before the failure is kept, what was not is lost).
  uint64_t partial_sync_kept = 0;
};

// Bytes the log holds as committed for live transfers.
uint64_t LiveCommittedBytes(const std::string& root) {
  auto j = engine::Journal::Open(root, true);
  if (!j.ok()) return 0;
  uint64_t n = 0;
  for (const auto& [id, t] : (*j)->state().transfers) n += t.committed.CoveredBytes();
  return n;
}

// One faulted case; all CHECKs carry the case in their INFO.
void RunCase(const Scenario& sc, const Expected& ex, const std::string& root, storage::FsOp op,
             uint64_t nth, int err, bool persistent, Tally* tally) {
  std::string name = std::string(storage::FsOpName(op)) + "#" + std::to_string(nth) + " " +
                     (err == ENOSPC ? "ENOSPC" : "EIO") +
                     (persistent ? " persistent" : " transient");
  INFO("case: ", name, " root ", root);
  fs::create_directories(root);
  std::string real = fs::canonical(root).string();
  storage::FaultFileSystem ffs(storage::RealFileSystem());
  ffs.FailNth(op, nth, err, persistent);
  Status s = sc.Run(root, &ffs);
  ++tally->cases;
  bool injected = ffs.InjectedCount() > 0;
  if (s.ok()) {
    ++tally->succeeded;
    if (injected) {
      tally->retried.insert(name);
      // A failed fsync may have lost what it was to make durable, and a second one says
      // nothing of it (nor does skipping it because the directory now exists): never survived.
      CHECK_MESSAGE(op != storage::FsOp::kSync, "the pull went on after a failed sync");
    } else {
      ++tally->not_reached;
    }
  } else {
    INFO("status: ", s.ToString());
    CHECK(injected);
    CHECK(s.code() == (err == ENOSPC ? StatusCode::kNoSpace : StatusCode::kIOError));
    bool names_path =
        s.message().find(real) != std::string::npos || s.message().find(root) != std::string::npos;
    CHECK_MESSAGE(names_path, "the error does not name the path");
    CHECK_MESSAGE(s.message().find(" again") != std::string::npos,
                  "the error does not say what to do");
    ++tally->failed_cleanly;
    std::string key = name.substr(0, name.find('#')) + name.substr(name.find(' '));
    key = key.substr(0, key.rfind(' '));
    tally->samples.emplace(key, s.ToString());
    if (op == storage::FsOp::kSync && s.message().find("/partial/") != std::string::npos &&
        LiveCommittedBytes(root) > 0)
      ++tally->partial_sync_kept;
  }
  CHECK(CheckPromoted(ex, root) == "");
  if (std::string lag = LogLag(ex, root); !lag.empty()) tally->lagging[lag] += 1;
  CHECK(CheckLogClaims(root, *ex.fx) == "");

  // The next run, without faults, converges.
  Status next = Scenario{sc.hub}.Run(root, nullptr, {"main"});
  INFO("next run: ", next.ToString());
  REQUIRE(next.ok());
  CHECK(SameAsCommit(ex, ex.main, root + "/models/fixtures/versions") == "");
  CHECK(fs::is_regular_file(root + "/versions"));
  engine::VerifyOptions vo;
  vo.root = root;
  auto v = engine::Verify(engine::RealEnv(), vo);
  REQUIRE(v.ok());
  CHECK(v->issues.empty());
  CHECK(v->files == ex.commits.at(ex.main).size());
  CHECK(CheckLogClaims(root, *ex.fx) == "");
  fs::remove_all(root);
}

}  // namespace

TEST_CASE("EIO and ENOSPC on the Nth write and the Nth sync of pull v1 -> main") {
  FixtureDir fx(SmallVersions());
  Expected ex = LoadExpected(fx);
  REQUIRE(ex.commits.size() == 2);
  EmulatorProcess emu(
      EmulatorProcess::Options{fx.path(), "hf_testtoken_0123456789", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir base;
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_TOKEN");
  ::setenv("HF_HOME", (base.path() + "/hf").c_str(), 1);
  Scenario sc{emu.hub_url()};

  // The counting run.
  storage::FaultFileSystem counter(storage::RealFileSystem());
  std::string croot = base.path() + "/count";
  fs::create_directories(croot);
  REQUIRE(sc.Run(croot, &counter).ok());
  uint64_t writes = counter.Count(storage::FsOp::kWrite);
  uint64_t syncs = counter.Count(storage::FsOp::kSync);
  REQUIRE(writes > 4);
  REQUIRE(syncs > 4);
  CHECK(SameAsCommit(ex, ex.main, croot + "/models/fixtures/versions") == "");
  {
    // The weights went through a partial file in several ranges.
    uint64_t range_events = 0;
    REQUIRE(engine::Journal::ScanLog(croot, 1, [&](uint64_t, const v1::Event& e) {
              range_events += e.has_ranges_committed();
              return Status::Ok();
            }).ok());
    CHECK(range_events >= 1);
    MESSAGE("counting run: ", writes, " writes, ", syncs, " syncs, ", range_events,
            " RangesCommitted events");
  }

  uint64_t stride_w = std::max<uint64_t>(1, writes / 12);
  uint64_t stride_s = std::max<uint64_t>(1, syncs / 12);
  if (const char* e = std::getenv("MODELSYNC_IOERR_STRIDE")) {
    stride_w = stride_s = std::max(1, std::atoi(e));
  }
  Tally tally;
  auto t0 = std::chrono::steady_clock::now();
  int k = 0;
  for (storage::FsOp op : {storage::FsOp::kWrite, storage::FsOp::kSync}) {
    uint64_t count = op == storage::FsOp::kWrite ? writes : syncs;
    uint64_t stride = op == storage::FsOp::kWrite ? stride_w : stride_s;
    for (int err : {EIO, ENOSPC})
      for (bool persistent : {false, true})
        for (uint64_t n = 1; n <= count; n += stride)
          RunCase(sc, ex, base.path() + "/c" + std::to_string(k++), op, n, err, persistent, &tally);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string retried, lag;
  for (const auto& r : tally.retried) retried += " [" + r + "]";
  for (const auto& [what, n] : tally.lagging) lag += " [" + what + ": " + std::to_string(n) + "]";
  MESSAGE("I/O-error cases: ", tally.cases, " run (writes ", writes, " stride ", stride_w,
          ", syncs ", syncs, " stride ", stride_s, "), ", tally.failed_cleanly, " failed cleanly, ",
          tally.succeeded, " succeeded (", tally.not_reached,
          " fault not reached; retried:", retried.empty() ? " none" : retried, "), ", secs,
          " s; log behind the disk after the fault:", lag.empty() ? " never" : lag);
  for (const auto& [key, msg] : tally.samples) MESSAGE("e.g. ", key, ": ", msg);
  CHECK(tally.failed_cleanly > 0);
}

TEST_CASE(
    "a failed fsync in the middle of a partial file loses its unsynced ranges, keeps the rest") {
  // The same scenario with the body rate capped, so the weights are synced on the 500 ms
  // clock several times mid-transfer; the faults go to the syncs of partial files only.
  FixtureDir fx(SmallVersions());
  Expected ex = LoadExpected(fx);
  EmulatorProcess emu(
      EmulatorProcess::Options{fx.path(), "hf_testtoken_0123456789", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir base;
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_TOKEN");
  ::setenv("HF_HOME", (base.path() + "/hf").c_str(), 1);
  Scenario sc{emu.hub_url(), 48u << 10};

  storage::FaultFileSystem counter(storage::RealFileSystem());
  std::vector<uint64_t> partial_syncs;  // sync ordinals that hit a partial file
  uint64_t syncs = 0;
  counter.SetHook([&](storage::FsOp op, uint64_t, const std::string& path) {
    if (op != storage::FsOp::kSync) return;
    ++syncs;
    if (path.find("/.modelsync/partial/") != std::string::npos) partial_syncs.push_back(syncs);
  });
  std::string croot = base.path() + "/count";
  fs::create_directories(croot);
  REQUIRE(sc.Run(croot, &counter).ok());
  uint64_t range_events = 0;
  REQUIRE(engine::Journal::ScanLog(croot, 1, [&](uint64_t, const v1::Event& e) {
            range_events += e.has_ranges_committed();
            return Status::Ok();
          }).ok());
  MESSAGE("throttled counting run: ", syncs, " syncs, ", partial_syncs.size(),
          " of partial files, ", range_events, " RangesCommitted events");
  CHECK(range_events >= 3);

  Tally tally;
  auto t0 = std::chrono::steady_clock::now();
  int k = 0;
  // CI: EIO only (the run is rate-bound, ~1.2 s a case); the full run adds ENOSPC.
  std::vector<int> errs = {EIO};
  if (std::getenv("MODELSYNC_IOERR_STRIDE")) errs.push_back(ENOSPC);
  for (uint64_t n : partial_syncs)
    for (int err : errs)
      RunCase(sc, ex, base.path() + "/p" + std::to_string(k++), storage::FsOp::kSync, n, err,
              /*persistent=*/false, &tally);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("mid-transfer sync faults: ", tally.cases, " cases, ", tally.failed_cleanly,
          " failed cleanly, ", tally.partial_sync_kept,
          " kept earlier committed ranges after the failed sync, ", secs, " s");
  CHECK(tally.partial_sync_kept > 0);
}

// Issue 14 defect 1: a blob on disk that the log never recorded is re-hashed before it is
// linked. A read error there used to count as a wrong digest and delete the (good) blob; it
// is an I/O error now, and the blob stays.
TEST_CASE("regression: a read error while re-hashing an unrecorded blob keeps the blob") {
  FixtureDir fx(SmallVersions());
  Expected ex = LoadExpected(fx);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir base;
  const std::string root = base.path() + "/root";
  // A good blob of the main revision, left in blobs/ without any event (an earlier root's).
  const auto& files = ex.commits.at(ex.main);
  const std::string id = files.begin()->second;
  const std::string blob = root + "/.modelsync/blobs/" + id;
  fs::create_directories(root + "/.modelsync/blobs");
  fs::copy_file(ex.objects.at(id), blob);
  REQUIRE(HashOf(id, blob) == id);

  storage::FaultFileSystem ffs(storage::RealFileSystem());
  ffs.FailReads(EIO);
  engine::Env env = engine::RealEnv();
  env.fs = &ffs;
  engine::PullOptions po;
  po.root = root;
  po.repo = kRepo;
  po.endpoint = emu.hub_url();
  auto r = engine::Pull(env, po, nullptr);
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().IsIOError());
  CHECK(r.status().detail() == EIO);
  CHECK(r.status().message().find("unrecorded blob") != std::string::npos);
  CHECK(fs::exists(blob));  // not deleted: a read error is not a wrong digest
  CHECK(HashOf(id, blob) == id);

  // Readable again: the blob is verified and linked, never fetched.
  ffs.FailReads(0);
  auto again = engine::Pull(env, po, nullptr);
  REQUIRE(again.ok());
  CHECK(SameAsCommit(ex, ex.main, root + "/models/fixtures/versions") == "");
  CHECK(CheckLogClaims(root, fx) == "");
}

// Issue 14: rebuild, remove and gc run on the Env's file system, so the I/O-error loop covers
// them too. For each, a fresh root holding fixtures/versions at main (pulled for real) gets
// the operation with the Nth file-system side effect of any kind failing (every N; EIO and
// ENOSPC; once, or from then on); then: the operation succeeded or failed with kIOError /
// kNoSpace, every durable claim of the log holds (CheckLogClaims), nothing unverified is
// under models/, and the same operation without faults converges to the expected disk.
// (It found gc deleting verified blobs the log still claimed: BlobRemoved since.)
TEST_CASE("EIO and ENOSPC at every side effect of rebuild, remove and gc keep the root consistent") {
  FixtureDir fx(SmallVersions());
  Expected ex = LoadExpected(fx);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir base;
  Scenario sc{emu.hub_url()};
  const std::string model = "/models/fixtures/versions", marker = "/versions";

  struct Op {
    const char* name;
    std::function<void(const std::string& root)> prepare;  // real file system
    std::function<Status(const engine::Env&, const std::string& root)> run;
    std::function<std::string(const std::string& root)> converged;  // "" when right
    bool clean_start;  // the prepared root keeps every claim of its log (else: damage to repair)
  };
  auto rebuild = [](const engine::Env& env, const std::string& root) {
    engine::RebuildOptions o;
    o.root = root;
    return engine::Rebuild(env, o).status();
  };
  auto remove_then_gc = [](const engine::Env& env, const std::string& root) {
    engine::RemoveOptions o;
    o.root = root;
    o.repo = kRepo;
    // Run again after a failure, remove finds the repo already gone (kNotFound): gc goes on.
    if (auto r = engine::Remove(env, o); !r.ok() && !r.status().IsNotFound()) return r.status();
    engine::GcOptions g;
    g.root = root;
    return engine::Gc(env, g).status();
  };
  const std::vector<Op> ops = {
      {"rebuild",
       [&](const std::string& root) {
         fs::remove_all(root + model);
         fs::remove(root + marker);
       },
       rebuild,
       [&](const std::string& root) {
         std::string d = SameAsCommit(ex, ex.main, root + model);
         return !d.empty() ? d : fs::exists(root + marker) ? "" : "no marker";
       },
       false},
      {"remove+gc", [](const std::string&) {}, remove_then_gc,
       [&](const std::string& root) -> std::string {
         if (fs::exists(root + model)) return "model directory left";
         if (fs::exists(root + marker)) return "marker left";
         if (!FilesUnder(root + "/.modelsync/blobs").empty()) return "blobs left after gc";
         return "";
       },
       true},
  };
  const std::vector<int> errs = {EIO, ENOSPC};
  const char* stride_env = std::getenv("MODELSYNC_IOERR_STRIDE");
  int k = 0;
  for (const Op& op : ops) {
    // The counting run.
    const std::string croot = base.path() + "/count-" + op.name;
    REQUIRE(sc.Run(croot, nullptr, {"main"}).ok());
    op.prepare(croot);
    storage::FaultFileSystem counter(storage::RealFileSystem());
    engine::Env cenv = engine::RealEnv();
    cenv.fs = &counter;
    REQUIRE(op.run(cenv, croot).ok());
    REQUIRE(op.converged(croot) == "");
    const uint64_t total = counter.TotalCount();
    REQUIRE(total > 3);
    const uint64_t stride = stride_env ? std::max(1, std::atoi(stride_env)) : 1;
    uint64_t failed = 0, cases = 0;
    for (int err : errs)
      for (bool persistent : {false, true})
      for (uint64_t n = 1; n <= total; n += stride) {
        const std::string root = base.path() + "/o" + std::to_string(k++);
        REQUIRE(sc.Run(root, nullptr, {"main"}).ok());
        op.prepare(root);
        storage::FaultFileSystem ffs(storage::RealFileSystem());
        ffs.FailNthAny(n, err, persistent);
        engine::Env env = engine::RealEnv();
        env.fs = &ffs;
        Status s = op.run(env, root);
        INFO(std::string(op.name), ": side effect ", n, " of ", total, " fails with ",
             std::string(std::strerror(err)), persistent ? " from then on" : " once", ": ",
             s.ToString());
        ++cases;
        if (!s.ok()) {
          ++failed;
          CHECK((s.IsIOError() || s.IsNoSpace()));
        }
        // A clean start keeps every durable claim; a repair (rebuild of a deleted model) starts
        // from damage, and must at least promote nothing unverified.
        if (op.clean_start) CHECK(CheckLogClaims(root, fx) == "");
        CHECK(CheckPromoted(ex, root) == "");
        Status again = op.run(engine::RealEnv(), root);
        CHECK(again.ok());
        CHECK(op.converged(root) == "");
        fs::remove_all(root);
      }
    MESSAGE(std::string(op.name), ": ", total, " side effects, ", cases, " faulted runs (stride ", stride,
            "), ", failed, " failed cleanly, every one converged");
    CHECK(failed > 0);
  }
}
