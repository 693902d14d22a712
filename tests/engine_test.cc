// engine::State (the fold), engine::Journal (log + state + snapshots) and `modelsync log`.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>

#include "base/platform.h"
#include "engine/journal.h"
#include "engine/recovery_util.h"
#include "engine/state.h"
#include "storage/event_log.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::engine;
using modelsync::testing::OneOfEachKind;
using modelsync::testing::Ranges;
using modelsync::testing::TempDir;
using modelsync::v1::Event;

namespace {

std::unique_ptr<Journal> OpenJournal(const std::string& root, JournalOptions o = {}) {
  auto j = Journal::Open(root, false, o);
  REQUIRE_MESSAGE(j.ok(), j.status().ToString());
  return std::move(j).value();
}

// Random but plausible traffic over a few repos and transfers (seeded, so it replays).
std::vector<Event> Traffic(std::mt19937& rng, uint64_t* next_id, int n) {
  std::vector<Event> v;
  const char* repos[] = {"org/a", "org/b", "org/c"};
  for (int i = 0; i < n; ++i) {
    Event e;
    e.set_time_ms(1'700'000'000'000 + rng() % 1'000'000);
    std::string repo = repos[rng() % 3];
    std::string commit = std::string(39, 'c') + static_cast<char>('0' + rng() % 4);
    uint64_t id = 1 + rng() % (*next_id + 1);
    switch (rng() % 12) {
      case 0: {
        auto* x = e.mutable_repo_tracked();
        x->set_repo(repo);
        x->set_ref("main");
        x->add_include("*.json");
        break;
      }
      case 1: {
        auto* x = e.mutable_revision_resolved();
        x->set_repo(repo);
        x->set_ref("main");
        x->set_commit(commit);
        for (int f = 0; f < 3; ++f) {
          auto* fe = x->mutable_manifest()->add_files();
          fe->set_path("f" + std::to_string(f));
          fe->set_size(rng() % 1000);
        }
        break;
      }
      case 2: {
        auto* x = e.mutable_transfer_started();
        x->set_transfer_id((*next_id)++);
        x->set_repo(repo);
        x->set_path("f" + std::to_string(rng() % 3));
        x->set_size(1 << 20);
        break;
      }
      case 3:
      case 4:
      case 5: {
        uint64_t b = rng() % (1 << 20);
        e = Ranges(id, b, b + rng() % 65536, e.time_ms());
        break;
      }
      case 6: {
        auto* x = e.mutable_blob_verified();
        x->set_transfer_id(id);
        x->set_content_id("blob" + std::to_string(rng() % 50));
        x->set_size(rng() % 1000);
        break;
      }
      case 7: {
        auto* x = e.mutable_transfer_failed();
        x->set_transfer_id(id);
        x->set_reason("stall");
        x->set_discarded(rng() % 2);
        break;
      }
      case 8: {
        auto* x = e.mutable_file_materialized();
        x->set_repo(repo);
        x->set_commit(commit);
        x->set_path("f" + std::to_string(rng() % 3));
        x->set_content_id("blob" + std::to_string(rng() % 50));
        break;
      }
      case 9: {
        auto* x = e.mutable_revision_activated();
        x->set_repo(repo);
        x->set_commit(commit);
        x->set_ref("main");
        break;
      }
      case 10: {
        e.mutable_marker_written()->set_repo(repo);
        e.mutable_marker_written()->set_model_id(repo.substr(4));
        break;
      }
      default: {
        e.mutable_sync_failed()->set_repo(repo);
        e.mutable_sync_failed()->set_reason("503");
        break;
      }
    }
    v.push_back(std::move(e));
  }
  return v;
}

std::string Run(const std::string& cmd, int* rc) {
  std::string out_file = "/tmp/ms_engine_test_out_" + std::to_string(::getpid());
  int st = std::system((cmd + " > " + out_file).c_str());
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(out_file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(out_file.c_str());
  return ss.str();
}

std::string Modelsync() {
  const char* b = std::getenv("MODELSYNC_BUILD_DIR");
  REQUIRE_MESSAGE(b, "MODELSYNC_BUILD_DIR is not set (run through ctest)");
  return std::string(b) + "/cli/modelsync";
}

}  // namespace

TEST_CASE("the fold follows the rules written in engine/state.h") {
  State s;
  uint64_t seq = 0;
  auto apply = [&](const Event& e) { s.Apply(++seq, e); };
  Event e;
  const std::string repo = "org/a", c1 = std::string(40, '1');
  e.mutable_repo_tracked()->set_repo(repo);
  e.mutable_repo_tracked()->set_ref("main");
  apply(e);
  e.Clear();
  e.set_time_ms(5);
  auto* rr = e.mutable_revision_resolved();
  rr->set_repo(repo);
  rr->set_ref("main");
  rr->set_commit(c1);
  rr->mutable_manifest()->add_files()->set_path("a.json");
  apply(e);
  for (uint64_t id : {1, 2, 3}) {
    e.Clear();
    e.mutable_transfer_started()->set_transfer_id(id);
    e.mutable_transfer_started()->set_repo(repo);
    e.mutable_transfer_started()->set_size(100);
    apply(e);
  }
  apply(Ranges(1, 0, 50, 6));
  apply(Ranges(1, 50, 100, 6));
  apply(Ranges(2, 0, 10, 6));
  apply(Ranges(99, 0, 10, 6));  // unknown transfer
  e.Clear();
  e.mutable_blob_verified()->set_transfer_id(1);
  e.mutable_blob_verified()->set_content_id("cid1");
  e.mutable_blob_verified()->set_size(100);
  apply(e);
  e.Clear();
  e.mutable_transfer_failed()->set_transfer_id(2);
  e.mutable_transfer_failed()->set_reason("stalled");
  apply(e);
  e.mutable_transfer_failed()->set_transfer_id(3);
  e.mutable_transfer_failed()->set_discarded(true);
  apply(e);
  CHECK(s.blobs.at("cid1") == 100);
  CHECK(s.transfers.size() == 1);
  CHECK(s.transfers.at(2).status == TransferState::Status::kFailed);
  CHECK(s.transfers.at(2).failure == "stalled");
  CHECK(s.transfers.at(2).committed.CoveredBytes() == 10);
  CHECK(s.next_transfer_id == 4);
  CHECK(s.anomalies == 1);

  for (const char* p : {"a.json", "b.json"}) {
    e.Clear();
    auto* fm = e.mutable_file_materialized();
    fm->set_repo(repo);
    fm->set_commit(c1);
    fm->set_path(p);
    fm->set_content_id(std::string("id-") + p);
    apply(e);
  }
  e.Clear();
  e.mutable_file_removed()->set_repo(repo);
  e.mutable_file_removed()->set_commit(c1);
  e.mutable_file_removed()->set_path("b.json");
  apply(e);
  e.Clear();
  e.set_time_ms(9);
  e.mutable_sync_failed()->set_repo(repo);
  e.mutable_sync_failed()->set_reason("503");
  e.mutable_sync_failed()->set_code(6);
  apply(e);
  const RepoState& r = s.repos.at(repo);
  CHECK(r.last_error == "503");
  CHECK(r.last_error_ms == 9);
  CHECK(r.pending.at(c1).size() == 1);
  e.Clear();
  auto* ra = e.mutable_revision_activated();
  ra->set_repo(repo);
  ra->set_commit(c1);
  ra->set_ref("main");
  ra->add_include("*.json");
  apply(e);
  CHECK(r.active_commit == c1);
  CHECK(r.materialized == std::map<std::string, std::string>{{"a.json", "id-a.json"}});
  CHECK(r.pending.empty());
  CHECK(r.last_error.empty());
  CHECK(r.active_include == std::vector<std::string>{"*.json"});
  CHECK_FALSE(r.marker);
  e.Clear();
  e.mutable_marker_written()->set_repo(repo);
  e.mutable_marker_written()->set_model_id("a");
  apply(e);
  CHECK(r.marker);
  CHECK(r.model_id == "a");
  e.Clear();
  e.mutable_repo_untracked()->set_repo(repo);
  apply(e);
  CHECK_FALSE(r.tracked);
  CHECK(r.tracking.ref() == "main");
  CHECK(r.revisions.at(c1).resolved_ms == 5);
  CHECK(r.last_resolved_commit == c1);
  CHECK(s.last_seq == seq);

  // Snapshot bytes round-trip to the same digest.
  State back;
  REQUIRE(back.LoadSnapshotBytes(s.ToSnapshotBytes()).ok());
  CHECK(back.Digest() == s.Digest());
  CHECK(back.LoadSnapshotBytes("\xff\xff garbage").IsCorruption());
}

TEST_CASE("full replay and snapshot + tail give the same state digest") {
  TempDir dir;
  std::mt19937 rng(42);
  uint64_t next_id = 1;
  std::string writer_digest;
  JournalOptions o;
  o.snapshot_every = 0;
  {
    auto j = OpenJournal(dir.path(), o);
    for (int b = 0; b < 40; ++b) {
      REQUIRE(j->Append(Traffic(rng, &next_id, 500)).ok());
      if (b == 19) REQUIRE(j->WriteSnapshot().ok());
    }
    CHECK(j->state().last_seq == 20'000);
    writer_digest = j->state().Digest();
  }
  {
    auto j = OpenJournal(dir.path(), o);
    CHECK(j->loaded_snapshot_seq() == 10'000);
    CHECK(j->snapshot_note().empty());
    CHECK(j->state().Digest() == writer_digest);
    State full;
    REQUIRE(j->ForEachEvent(1, [&](uint64_t seq, const Event& e) {
               full.Apply(seq, e);
               return Status::Ok();
             }).ok());
    CHECK(full.last_seq == 20'000);
    CHECK(full.Digest() == writer_digest);
    CHECK(full.anomalies > 0);  // the traffic does refer to unknown transfers
  }
  // A damaged snapshot costs a full replay, not the root.
  {
    auto log = storage::EventLog::Open(dir.path(), storage::EventLog::Mode::kReadWrite);
    REQUIRE(log.ok());
    REQUIRE((*log)->PutSnapshot("state", 10'000, "not a snapshot").ok());
  }
  {
    auto j = OpenJournal(dir.path(), o);
    CHECK(j->loaded_snapshot_seq() == 0);
    CHECK(j->snapshot_note().find("ignored") != std::string::npos);
    CHECK(j->state().Digest() == writer_digest);
  }
  // Automatic snapshots, and a read-only journal sees the same state.
  o.snapshot_every = 1000;
  { OpenJournal(dir.path(), o)->Append(Traffic(rng, &next_id, 1500)).value(); }
  auto ro = Journal::Open(dir.path(), true);
  REQUIRE(ro.ok());
  CHECK((*ro)->loaded_snapshot_seq() == 21'500);
  CHECK((*ro)->state().last_seq == 21'500);
}

TEST_CASE("journal: stamps time, one writer, read-only on an empty root, newer log refused") {
  TempDir dir;
  auto empty = Journal::Open(dir.Sub("none"), true);
  REQUIRE(empty.ok());
  CHECK(empty.value()->state().last_seq == 0);
  CHECK(empty.value()->Append({Event()}).status().code() == StatusCode::kInvalidArgument);

  FakeClock clock(1'764'100'000'000);
  JournalOptions o;
  o.clock = &clock;
  auto j = OpenJournal(dir.path(), o);
  Event e = Ranges(1, 0, 1, 0);
  Event stamped = Ranges(1, 0, 1, 77);
  auto seqs = j->Append({e, stamped});
  REQUIRE(seqs.ok());
  std::vector<int64_t> times;
  REQUIRE(j->ForEachEvent(0, [&](uint64_t, const Event& ev) {
             times.push_back(ev.time_ms());
             return Status::Ok();
           }).ok());
  CHECK(times == std::vector<int64_t>{1'764'100'000'000, 77});
  CHECK(j->state().anomalies == 2);

  auto second = Journal::Open(dir.path(), false);
  CHECK(second.status().IsLocked());
  // "root R is in use by pid N (engine_test ...) (wait for it to finish, or stop it)": the
  // holder's command is named where the platform knows it.
  const std::string msg = second.status().message();
  const std::string head = "root " + dir.path() + " is in use by pid " + std::to_string(::getpid());
  CHECK(msg.rfind(head, 0) == 0);
  if (std::string(platform::Name()) == "posix")  // ProcessCommand knows none there
    CHECK(msg == head + " (wait for it to finish, or stop it)");
  else
    CHECK(msg.find("engine_test") != std::string::npos);
  CHECK(msg.size() > 36);
  CHECK(msg.substr(msg.size() - 36) == " (wait for it to finish, or stop it)");
}

TEST_CASE("modelsync log prints every event, as text and as JSON, and fails on damage") {
  TempDir dir;
  auto events = OneOfEachKind();
  { OpenJournal(dir.path())->Append(events).value(); }
  int rc = -1;
  std::string text = Run(Modelsync() + " log --root '" + dir.path() + "'", &rc);
  CHECK(rc == 0);
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  REQUIRE(lines.size() == events.size());
  CHECK(std::regex_match(
      lines[0],
      std::regex(
          R"(#1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ RepoTracked repo=mlx-community/Qwen2.5-0.5B-Instruct-4bit ref=main .*)")));
  CHECK(lines[3].find("RangesCommitted transfer=7 [0, 8388608) [16777216, 25165824)") !=
        std::string::npos);
  CHECK(lines[1].find("RevisionResolved") != std::string::npos);
  CHECK(lines[1].find("files=40") != std::string::npos);

  std::string json = Run("MODELSYNC_ROOT='" + dir.path() + "' " + Modelsync() + " log --json", &rc);
  CHECK(rc == 0);
  std::stringstream js(json);
  int n = 0;
  for (std::string l; std::getline(js, l); ++n) {
    auto j = nlohmann::json::parse(l);
    CHECK(j["seq"] == n + 1);
    CHECK(j["time_ms"] == events[n].time_ms());
    if (n == 3) {
      CHECK(j["kind"] == "RangesCommitted");
      CHECK(j["event"]["transfer_id"] == 7);
      CHECK(j["event"]["ranges"][1]["end"] == 25'165'824);
    }
  }
  CHECK(n == static_cast<int>(events.size()));

  // Flip one bit inside event #6's payload ("sha256 mismatch: ..." is stored raw).
  std::string data_path = storage::LogDir(dir.path()) + "/data.mdb";
  std::ifstream in(data_path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  size_t at = buf.str().find("sha256 mismatch");
  REQUIRE(at != std::string::npos);
  int fd = ::open(data_path.c_str(), O_WRONLY);
  char c = static_cast<char>(buf.str()[at] ^ 0x04);
  REQUIRE(::pwrite(fd, &c, 1, static_cast<off_t>(at)) == 1);
  ::close(fd);
  std::string err_file = dir.Sub("stderr");
  text = Run(Modelsync() + " log --root '" + dir.path() + "' 2>'" + err_file + "'", &rc);
  CHECK(rc == 3);
  std::ifstream ein(err_file);
  std::string err((std::istreambuf_iterator<char>(ein)), std::istreambuf_iterator<char>());
  CHECK_MESSAGE(err.find("event #6 is corrupt: checksum mismatch") != std::string::npos, err);
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);  // the five before it
  CHECK(Journal::Open(dir.path(), true).status().IsCorruption());
}

// Issue 14 (found by the rebuild/remove/gc I/O-error loop): gc deleted verified blobs without
// a word in the log, so the log kept claiming them. BlobRemoved, committed before the file
// goes, makes the fold forget the blob.
TEST_CASE("the fold forgets a blob at BlobRemoved, and only that blob") {
  State s;
  uint64_t seq = 0;
  const std::string a(64, 'a'), b(40, 'b');
  for (const auto& [id, size] : {std::pair{a, uint64_t{10}}, std::pair{b, uint64_t{20}}}) {
    Event e;
    e.mutable_blob_verified()->set_content_id(id);
    e.mutable_blob_verified()->set_size(size);
    s.Apply(++seq, e);
  }
  REQUIRE(s.blobs.size() == 2);
  Event r;
  r.mutable_blob_removed()->set_content_id(a);
  r.mutable_blob_removed()->set_reason("unreferenced");
  s.Apply(++seq, r);
  CHECK(s.blobs.count(a) == 0);
  CHECK(s.blobs.at(b) == 20);
  CHECK(s.anomalies == 0);
}

TEST_CASE("a converted model's source: recorded fields, an older log's label, a local path") {
  const std::string root = "/r";
  v1::Derivation d;
  d.set_source("https://hub.example/acme/m-GGUF@" + std::string(40, 'a') + "/m.Q4_0.gguf");
  // Fields (this version) win over the label.
  d.set_source_repo("acme/other-GGUF");
  d.set_source_commit(std::string(40, 'b'));
  d.set_source_file("sub/x.gguf");
  CHECK(ConvertSourcePath(root, d) == "/r/models/acme/other-GGUF/sub/x.gguf");
  d.set_source_file("");  // a PyTorch repo: its directory
  CHECK(ConvertSourcePath(root, d) == "/r/models/acme/other-GGUF");
  d.set_source_file("../../etc/passwd");
  CHECK(ConvertSourcePath(root, d) == "");
  d.set_source_file("x.gguf");
  d.set_source_repo("../acme");
  CHECK(ConvertSourcePath(root, d) == "");
  // A log written before the fields: the label is parsed.
  d.clear_source_repo();
  d.clear_source_commit();
  d.clear_source_file();
  CHECK(ConvertSourcePath(root, d) == "/r/models/acme/m-GGUF/m.Q4_0.gguf");
  d.set_source("https://hub.example/acme/m@" + std::string(40, 'c'));
  CHECK(ConvertSourcePath(root, d) == "/r/models/acme/m");
  d.set_source("https://hub.example/acme/m@main/m.gguf");  // no commit: not a hub source
  CHECK(ConvertSourcePath(root, d) == "");
  d.set_source("/data/m.gguf");  // a local file
  CHECK(ConvertSourcePath(root, d) == "/data/m.gguf");
}
