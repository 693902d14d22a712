// Compaction of the log at the engine level: CompactionPlan keeps the fold exact (random
// histories), gc drops range events and shrinks the file, and a partial download cancelled
// before gc resumes after it, fetching only the rest.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "base/hash.h"
#include "engine/journal.h"
#include "engine/pull_internal.h"
#include "engine/recovery.h"
#include "engine/state_compact.h"
#include "fixtures/fixtures.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using modelsync::v1::Event;

namespace {

Event Started(uint64_t id, const std::string& cid) {
  Event e;
  auto* t = e.mutable_transfer_started();
  t->set_transfer_id(id);
  t->set_repo("org/model");
  t->set_commit("c1");
  t->set_path("file-" + std::to_string(id));
  t->set_content_id(cid);
  t->set_size(1 << 20);
  return e;
}
Event Verified(uint64_t id, const std::string& cid) {
  Event e;
  e.mutable_blob_verified()->set_transfer_id(id);
  e.mutable_blob_verified()->set_content_id(cid);
  e.mutable_blob_verified()->set_size(1 << 20);
  return e;
}
Event Ranges(uint64_t id, uint64_t begin, uint64_t end, int64_t time_ms) {
  Event e;
  e.set_time_ms(time_ms);
  auto* r = e.mutable_ranges_committed();
  r->set_transfer_id(id);
  auto* br = r->add_ranges();
  br->set_begin(begin);
  br->set_end(end);
  return e;
}
Event FailedTransfer(uint64_t id, bool discarded) {
  Event e;
  e.mutable_transfer_failed()->set_transfer_id(id);
  e.mutable_transfer_failed()->set_reason("stalled");
  e.mutable_transfer_failed()->set_discarded(discarded);
  return e;
}

// A random history over a few transfer ids: starts (also reusing ids), ranges (also for
// unknown ids: anomalies), verifications, failures kept and discarded.
std::vector<Event> RandomHistory(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::vector<Event> out;
  for (size_t i = 0; i < n; ++i) {
    uint64_t id = 1 + rng() % 6;
    std::string cid = Sha256Hex(std::to_string(id) + "-" + std::to_string(i));
    switch (rng() % 10) {
      case 0:
      case 1:
        out.push_back(Started(id, cid));
        break;
      case 2:
        out.push_back(Verified(id, cid));
        break;
      case 3:
        out.push_back(Verified(0, cid));
        break;
      case 4:
        out.push_back(FailedTransfer(id, rng() % 2));
        break;
      default: {
        uint64_t b = rng() % (1 << 20);
        out.push_back(Ranges(id, b, b + 1 + rng() % 65536, static_cast<int64_t>(i)));
      }
    }
  }
  out.push_back(Verified(0, "end"));  // like a real log: never ends on a range event
  return out;
}

std::string FoldBytes(const std::vector<Event>& events, const std::vector<bool>& skip) {
  engine::State s;
  for (size_t i = 0; i < events.size(); ++i)
    if (!skip[i]) s.Apply(i + 1, events[i]);
  return s.ToSnapshotBytes();
}

}  // namespace

TEST_CASE("CompactionPlan: folding without the dropped events gives the same State") {
  uint64_t total_dropped = 0;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    auto events = RandomHistory(seed, 200);
    engine::CompactionPlan plan;
    for (size_t i = 0; i < events.size(); ++i) plan.Observe(i + 1, events[i]);
    std::vector<bool> skip(events.size(), false);
    for (uint64_t seq : plan.Take()) {
      REQUIRE(events[seq - 1].has_ranges_committed());
      skip[seq - 1] = true;
      ++total_dropped;
    }
    CHECK_FALSE(skip.back());
    std::vector<bool> none(events.size(), false);
    REQUIRE(FoldBytes(events, skip) == FoldBytes(events, none));
    // And on top of a snapshot taken anywhere after the dropped events.
    engine::State full;
    for (size_t i = 0; i < events.size(); ++i) full.Apply(i + 1, events[i]);
    engine::State part;
    REQUIRE(part.LoadSnapshotBytes(FoldBytes(events, skip)).ok());
    CHECK(part.Digest() == full.Digest());
  }
  CHECK(total_dropped > 1000);  // the histories did exercise it
}

namespace {

// A random history of file events over two repos and three commits: files materialized
// (pending), removed (by commit, by the active commit, with no commit, for an unknown
// commit), revisions activated with and without pending files, re-activated.
std::vector<Event> RandomFileHistory(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  const char* repos[] = {"org/a", "org/b"};
  const char* commits[] = {"c1", "c2", "c3", ""};
  std::vector<Event> out;
  for (size_t i = 0; i < n; ++i) {
    std::string repo = repos[rng() % 2];
    std::string commit = commits[rng() % (rng() % 8 == 0 ? 4 : 3)];
    std::string path = "f" + std::to_string(rng() % 5);
    Event e;
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2: {
        auto* fm = e.mutable_file_materialized();
        fm->set_repo(repo);
        fm->set_commit(commit);
        fm->set_path(path);
        fm->set_content_id(Sha256Hex(commit + path + std::to_string(i)));
        break;
      }
      case 3:
      case 4: {
        auto* fr = e.mutable_file_removed();
        fr->set_repo(repo);
        fr->set_commit(commit);
        fr->set_path(path);
        break;
      }
      default: {
        auto* ra = e.mutable_revision_activated();
        ra->set_repo(repo);
        ra->set_commit(commit);
        ra->set_ref("main");
      }
    }
    out.push_back(std::move(e));
  }
  out.push_back(Verified(0, "end"));
  return out;
}

}  // namespace

TEST_CASE("CompactionPlan: file events of replaced revisions go; the State stays the same") {
  uint64_t total_dropped = 0;
  for (uint32_t seed = 1; seed <= 500; ++seed) {
    CAPTURE(seed);
    auto events = RandomFileHistory(seed, 150);
    engine::CompactionPlan plan;
    for (size_t i = 0; i < events.size(); ++i) plan.Observe(i + 1, events[i]);
    std::vector<bool> skip(events.size(), false);
    for (uint64_t seq : plan.Take()) {
      REQUIRE((events[seq - 1].has_file_materialized() || events[seq - 1].has_file_removed()));
      skip[seq - 1] = true;
      ++total_dropped;
    }
    std::vector<bool> none(events.size(), false);
    REQUIRE(FoldBytes(events, skip) == FoldBytes(events, none));
    // A second compaction over what remains (as the next gc sees it) keeps it exact too.
    std::vector<Event> rest;
    for (size_t i = 0; i < events.size(); ++i)
      if (!skip[i]) rest.push_back(events[i]);
    engine::CompactionPlan again;
    for (size_t i = 0; i < rest.size(); ++i) again.Observe(i + 1, rest[i]);
    std::vector<bool> skip2(rest.size(), false);
    for (uint64_t seq : again.Take()) skip2[seq - 1] = true;
    std::vector<bool> none2(rest.size(), false);
    REQUIRE(FoldBytes(rest, skip2) == FoldBytes(rest, none2));
  }
  CHECK(total_dropped > 5000);  // the histories did exercise it
}

TEST_CASE("gc compacts the log: state unchanged with and without the snapshot; live ranges kept") {
  TempDir root;
  std::string before;
  {
    engine::JournalOptions jo;
    jo.snapshot_every = 0;
    auto j = engine::Journal::Open(root.path(), false, jo);
    REQUIRE(j.ok());
    for (int round = 0; round < 50; ++round) {
      uint64_t id = 10 + round;
      std::vector<Event> batch = {Started(id, "cid" + std::to_string(round))};
      for (int k = 0; k < 8; ++k) batch.push_back(Ranges(id, k * 100, (k + 1) * 100, round));
      batch.push_back(round % 5 == 4 ? FailedTransfer(id, true)
                                     : Verified(id, "cid" + std::to_string(round)));
      REQUIRE((*j)->Append(batch).ok());
    }
    // A live transfer (resumable failure) and a range event for an unknown id (anomaly).
    REQUIRE((*j)->Append({Started(99, "live"), Ranges(99, 0, 4096, 1), Ranges(99, 8192, 9000, 1),
                          FailedTransfer(99, false), Ranges(12345, 0, 1, 1), Verified(0, "x")})
                .ok());
    before = (*j)->state().ToSnapshotBytes();
    REQUIRE((*j)->state().transfers.count(99));
  }
  engine::GcOptions dry;
  dry.root = root.path();
  dry.dry_run = true;
  auto d = engine::Gc(engine::RealEnv(), dry);
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  CHECK(d->events_compacted == 400);
  CHECK(d->live_range_events == 2);
  CHECK(d->compacted_event_bytes > 400 * 20);
  CHECK_FALSE(d->snapshot_written);

  engine::GcOptions go;
  go.root = root.path();
  auto r = engine::Gc(engine::RealEnv(), go);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->events_compacted == 400);
  CHECK(r->snapshot_written);
  CHECK(r->log_rewritten);
  CHECK(r->rewrite_error == "");
  CHECK(r->log_bytes_after <= r->log_bytes_before);

  // With the snapshot (how commands open it) ...
  auto j = engine::Journal::Open(root.path(), true);
  REQUIRE(j.ok());
  CHECK((*j)->loaded_snapshot_seq() > 0);
  CHECK((*j)->state().ToSnapshotBytes() == before);
  const auto& live = (*j)->state().transfers.at(99);
  CHECK(live.committed.ranges().size() == 2);
  // ... and without it (a full replay of what remains), counting the gaps it passes.
  engine::State replay;
  uint64_t gap_events = 0, present = 0;
  REQUIRE((*j)->ForEachEvent(
                  1,
                  [&](uint64_t seq, const Event& e) {
                    replay.Apply(seq, e);
                    ++present;
                    return Status::Ok();
                  },
                  [&](uint64_t first, uint64_t last) {
                    gap_events += last - first + 1;
                    return Status::Ok();
                  })
              .ok());
  CHECK(gap_events == 400);
  CHECK(present == 50 * 10 + 6 - 400);
  CHECK(replay.ToSnapshotBytes() == before);
  j->reset();
  // A second gc has nothing more to drop.
  auto again = engine::Gc(engine::RealEnv(), go);
  REQUIRE(again.ok());
  CHECK(again->events_compacted == 0);
}

TEST_CASE("a read-only journal open across gc's rewrite refreshes onto the new log") {
  TempDir root;
  auto append = [&](std::vector<Event> batch) {
    auto j = engine::Journal::Open(root.path(), false);
    REQUIRE(j.ok());
    REQUIRE((*j)->Append(std::move(batch)).ok());
  };
  append({Started(1, "a"), Ranges(1, 0, 10, 1), Ranges(1, 10, 20, 1), Verified(1, "a")});
  int to_child[2], to_parent[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(to_parent) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto j = engine::Journal::Open(root.path(), true);
    char c = 'r';
    if (!j.ok() || ::write(to_parent[1], &c, 1) != 1 || ::read(to_child[0], &c, 1) != 1) ::_exit(1);
    if ((*j)->state().last_seq != 4) ::_exit(2);
    if (!(*j)->Refresh().ok()) ::_exit(3);  // sees the swap, reopens, replays
    ::_exit((*j)->state().last_seq == 5 && (*j)->state().blobs.count("b") ? 0 : 4);
  }
  char c;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  engine::GcOptions go;
  go.root = root.path();
  auto r = engine::Gc(engine::RealEnv(), go);
  REQUIRE(r.ok());
  CHECK(r->log_rewritten);
  append({Verified(0, "b")});
  REQUIRE(::write(to_child[1], &c, 1) == 1);
  int st = 0;
  ::waitpid(pid, &st, 0);
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
}

TEST_CASE("a pull cancelled mid-transfer, then gc, then pull: only the rest is fetched") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 3u << 20;
  fo.small_files = 8;
  fo.only = {"model", "many-files"};
  FixtureDir fixtures(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fixtures.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_TOKEN");
  TempDir root;
  ::setenv("HF_HOME", (root.path() + "/.hf-home").c_str(), 1);
  engine::Env menv = engine::RealEnv();
  menv.config.small_file_bytes = 1;  // every file through a partial: range events to compact
  auto pull = [&](const std::string& repo, const std::string& rev,
                  const std::atomic<bool>* cancel, engine::PullObserver* observer = nullptr) {
    engine::PullOptions po;
    po.root = root.path();
    po.repo = repo;
    po.revision = rev;
    po.endpoint = emu.hub_url();
    po.connections = 1;
    po.cancel = cancel;
    return engine::Pull(menv, po, observer);
  };
  // Finished transfers: another repo (no content shared with the model).
  auto many = pull(fixtures::kManyFilesRepo, "main", nullptr);
  REQUIRE_MESSAGE(many.ok(), many.status().ToString());
  // A slow pull of the model (CDN paced at 1 MB/s), cancelled once 1 MiB of it has arrived
  // (the runner records what is durable when cancelled).
  REQUIRE(emu.SetFaults(nlohmann::json::parse(
                            R"({"faults":[{"match":"model.safetensors","listener":"cdn",
                                "throttle_bps":1000000}]})"))
              .ok());
  struct CancelAfter final : engine::PullObserver {
    std::atomic<bool> cancel{false};
    void OnProgress(uint64_t done, uint64_t, uint64_t, uint64_t) override {
      if (done >= (1u << 20)) cancel = true;
    }
  } stopper;
  auto cancelled = pull(fixtures::kModelRepo, "main", &stopper.cancel, &stopper);
  REQUIRE_MESSAGE(cancelled.status().IsCancelled(), cancelled.status().ToString());

  // The CLI: --dry-run counts and changes nothing; --json carries the fields.
  std::map<std::string, std::string> env = {{"MODELSYNC_ROOT", root.path()},
                                            {"HF_HUB_OFFLINE", "\x01unset"}};
  auto dry = RunCli({"gc", "--dry-run", "--json"}, env);
  INFO(dry.out, dry.err);
  REQUIRE(dry.exit_code == 0);
  auto summary = nlohmann::json::parse(dry.out.substr(dry.out.rfind('{')));
  CHECK(summary["events_compacted"].get<uint64_t>() > 0);
  CHECK(summary["log_rewritten"] == false);
  CHECK(RunCli({"log"}, env).out.find("compacted away") == std::string::npos);

  // A gc that removes unreferenced blobs (BlobRemoved changes the fold) but does not compact,
  // so what follows compares the fold before and after compaction alone.
  {
    engine::GcOptions plain;
    plain.root = root.path();
    plain.compact = false;
    REQUIRE(engine::Gc(engine::RealEnv(), plain).ok());
  }
  std::string before;
  uint64_t committed = 0;
  {
    auto j = engine::Journal::Open(root.path(), true);
    REQUIRE(j.ok());
    before = (*j)->state().ToSnapshotBytes();
    for (const auto& [id, t] : (*j)->state().transfers) committed += t.committed.CoveredBytes();
  }
  REQUIRE(committed > 0);
  engine::GcOptions go;
  go.root = root.path();
  auto r = engine::Gc(engine::RealEnv(), go);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->events_compacted > 0);
  CHECK(r->live_range_events > 0);
  {
    auto j = engine::Journal::Open(root.path(), true);
    REQUIRE(j.ok());
    CHECK((*j)->state().ToSnapshotBytes() == before);
  }
  auto log = RunCli({"log"}, env);
  CHECK(log.exit_code == 0);
  CHECK(log.out.find("compacted away by gc (ranges of finished transfers") !=
        std::string::npos);
  auto json_log = RunCli({"log", "--json"}, env);
  CHECK(json_log.out.find("\"compacted\":{") != std::string::npos);
  REQUIRE(emu.SetFaults(nlohmann::json::parse(R"({"faults":[]})")).ok());
  auto done = pull(fixtures::kModelRepo, "main", nullptr);
  REQUIRE_MESSAGE(done.ok(), done.status().ToString());
  CHECK(done->bytes_fetched + committed <= done->bytes_total);
  CHECK(done->bytes_fetched < done->bytes_total);
  std::string weights = root.path() + "/models/" + fixtures::kModelRepo + "/model.safetensors";
  CHECK(HashFileHex(HashKind::kSha256, weights) ==
        HashFileHex(HashKind::kSha256,
                    fixtures.ObjectPath(fixtures::kModelRepo, "main", "model.safetensors")));
  // The log still replays from the start across the compacted runs, and gc again works.
  CHECK(engine::Gc(engine::RealEnv(), go).ok());
}
