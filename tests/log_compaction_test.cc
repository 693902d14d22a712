// Log compaction (format version 2) on real LMDB: dropped events recorded in meta, gaps
// accepted only where recorded, damage still named, the compact rewrite and crashes in it.
#include <doctest/doctest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "base/platform.h"
#include "storage/event_log.h"
#include "storage/record_format.h"
#include "storage/seq_runs.h"
#include "log_test_util.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using modelsync::testing::ForkChild;
using modelsync::testing::Ranges;
using modelsync::testing::OpenRw;
using modelsync::testing::RawEdit;
using modelsync::testing::TempDir;
using modelsync::testing::WaitChild;
using modelsync::v1::Event;

namespace {

Event Failed(int i) {
  Event e;
  e.set_time_ms(i);
  e.mutable_sync_failed()->set_repo("org/name");
  e.mutable_sync_failed()->set_reason("event-" + std::to_string(i));
  return e;
}

// Appends n events (SyncFailed) in one batch.
void Fill(EventLog& log, int n) {
  std::vector<Event> batch;
  for (int i = 1; i <= n; ++i) batch.push_back(Failed(i));
  REQUIRE(log.Append(batch).ok());
}

struct Seen {
  std::vector<uint64_t> seqs;
  std::vector<SeqRun> gaps;
  Status status;
};

Seen ReadSeen(EventLog& log, uint64_t from = 1) {
  Seen s;
  s.status = log.Replay(
      from,
      [&](uint64_t seq, const Event&) {
        s.seqs.push_back(seq);
        return Status::Ok();
      },
      [&](uint64_t first, uint64_t last) {
        s.gaps.push_back({first, last});
        return Status::Ok();
      });
  return s;
}

}  // namespace

TEST_CASE("seq runs: merge, cover, encode and reject bad encodings") {
  SeqRuns r;
  r.Add(5, 5);
  r.Add(7, 9);
  r.Add(6, 6);  // joins both
  r.Add(20, 21);
  r.Add(1, 2);
  CHECK(r.runs() == std::vector<SeqRun>{{1, 2}, {5, 9}, {20, 21}});
  CHECK(r.count() == 9);
  CHECK(r.Covers(5, 9));
  CHECK_FALSE(r.Covers(4, 9));
  CHECK_FALSE(r.Covers(9, 10));
  CHECK(r.Contains(21));
  CHECK_FALSE(r.Contains(3));
  SeqRuns back;
  REQUIRE(SeqRuns::Decode(r.Encode(), &back).ok());
  CHECK(back.runs() == r.runs());
  std::string enc = r.Encode();
  CHECK(SeqRuns::Decode(enc.substr(0, enc.size() - 1), &back).IsCorruption());
  CHECK(SeqRuns::Decode(enc + "x", &back).IsCorruption());
  CHECK(SeqRuns::Decode(std::string(11, '\xff'), &back).IsCorruption());
  // A run starting below the previous one cannot be encoded: gaps are unsigned.
  std::string overflow = "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00";
  CHECK(SeqRuns::Decode(overflow, &back).IsCorruption());
}

TEST_CASE("DropEvents: gaps recorded in meta read through, v1 becomes v2, no seq reused") {
  TempDir dir;
  auto log = OpenRw(dir.path());
  Fill(*log, 10);
  CHECK(log->format_version() == kLogFormatCreated);  // a new log stays readable by v1 binaries
  CHECK(log->DropEvents({}).ok());
  CHECK(log->format_version() == 1);
  // Refused, and nothing changes: the last event, unsorted, absent.
  CHECK(log->DropEvents({3, 10}).code() == StatusCode::kInvalidArgument);
  CHECK(log->DropEvents({4, 3}).code() == StatusCode::kInvalidArgument);
  CHECK(log->DropEvents({2, 11}).code() == StatusCode::kInvalidArgument);
  CHECK(ReadSeen(*log).seqs.size() == 10);
  REQUIRE(log->DropEvents({2, 3, 5}).ok());
  Status missing = log->DropEvents({2});
  CHECK(missing.code() == StatusCode::kInvalidArgument);
  CHECK(missing.message().find("not in the log") != std::string::npos);
  Seen s = ReadSeen(*log);
  REQUIRE_MESSAGE(s.status.ok(), s.status.ToString());
  CHECK(s.seqs == std::vector<uint64_t>{1, 4, 6, 7, 8, 9, 10});
  CHECK(s.gaps == std::vector<SeqRun>{{2, 3}, {5, 5}});
  // Reading from inside a gap reports its rest.
  s = ReadSeen(*log, 3);
  CHECK(s.seqs.front() == 4);
  CHECK(s.gaps.front() == SeqRun{3, 3});
  auto seqs = log->Append({Failed(11)});
  REQUIRE(seqs.ok());
  CHECK((*seqs)[0] == 11);
  REQUIRE(log->DropEvents({4, 6}).ok());  // merges with the earlier runs
  auto runs = log->Compacted();
  REQUIRE(runs.ok());
  CHECK(runs->runs() == std::vector<SeqRun>{{2, 6}});
  log.reset();
  auto ro = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
  REQUIRE(ro.ok());
  CHECK((*ro)->format_version() == 2);
  CHECK((*ro)->LastSeq() == 11);
  s = ReadSeen(**ro);
  CHECK(s.status.ok());
  CHECK(s.seqs == std::vector<uint64_t>{1, 7, 8, 9, 10, 11});
  // Read() (the plain reader) accepts the gaps too.
  std::vector<std::pair<uint64_t, Event>> out;
  CHECK((*ro)->Read(0, 100, &out).ok());
  CHECK(out.size() == 6);
}

TEST_CASE("an unrecorded gap, a present-but-compacted event, a damaged record: corruption") {
  TempDir dir;
  {
    auto log = OpenRw(dir.path());
    Fill(*log, 10);
    REQUIRE(log->DropEvents({2, 3}).ok());
  }
  SUBCASE("a gap nobody recorded names the event") {
    RawEdit(dir.path(), [](MDB_txn* txn, MDB_dbi events, MDB_dbi) {
      std::string k = SeqKey(7);
      MDB_val kv{8, k.data()};
      REQUIRE(mdb_del(txn, events, &kv, nullptr) == 0);
    });
    auto log = OpenRw(dir.path());
    Seen s = ReadSeen(*log);
    CHECK(s.status.IsCorruption());
    CHECK(s.status.message().find("event #7 is corrupt: it is missing") != std::string::npos);
    CHECK(s.seqs == std::vector<uint64_t>{1, 4, 5, 6});
  }
  SUBCASE("an event back under a compacted seq") {
    RawEdit(dir.path(), [](MDB_txn* txn, MDB_dbi events, MDB_dbi) {
      RecordCodec codec;
      std::string rec, k = SeqKey(3);
      codec.Encode(k, Failed(3).SerializeAsString(), &rec);
      MDB_val kv{8, k.data()}, v{rec.size(), rec.data()};
      REQUIRE(mdb_put(txn, events, &kv, &v, 0) == 0);
    });
    auto log = OpenRw(dir.path());
    Seen s = ReadSeen(*log);
    CHECK(s.status.IsCorruption());
    CHECK(s.status.message().find("event #3 is corrupt: it is present although") !=
          std::string::npos);
  }
  SUBCASE("a flipped bit in the compaction record") {
    RawEdit(dir.path(), [](MDB_txn* txn, MDB_dbi, MDB_dbi meta) {
      std::string k = "compacted";
      MDB_val kv{k.size(), k.data()}, v;
      REQUIRE(mdb_get(txn, meta, &kv, &v) == 0);
      std::string rec(static_cast<const char*>(v.mv_data), v.mv_size);
      rec.back() = static_cast<char>(rec.back() ^ 0x10);
      MDB_val nv{rec.size(), rec.data()};
      REQUIRE(mdb_put(txn, meta, &kv, &nv, 0) == 0);
    });
    auto log = OpenRw(dir.path());  // opening works: the damage matters at the gap
    Seen s = ReadSeen(*log);
    CHECK(s.status.IsCorruption());
    CHECK(s.status.message().find("event #2 is corrupt") != std::string::npos);
    CHECK(s.status.message().find("record of compacted events") != std::string::npos);
    CHECK(s.seqs == std::vector<uint64_t>{1});
    CHECK(log->Compacted().status().IsCorruption());
    CHECK(log->DropEvents({5}).IsCorruption());  // never merges into a damaged record
  }
  SUBCASE("a newer format is refused with upgrade advice") {
    RawEdit(dir.path(), [](MDB_txn* txn, MDB_dbi, MDB_dbi meta) {
      std::string k = "format_version";
      char v3[4] = {0, 0, 0, 3};
      MDB_val kv{k.size(), k.data()}, v{4, v3};
      REQUIRE(mdb_put(txn, meta, &kv, &v, 0) == 0);
    });
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    CHECK(log.status().code() == StatusCode::kVersion);
    CHECK(log.status().message().find("upgrade modelsync") != std::string::npos);
  }
}

TEST_CASE("Rewrite shrinks the file; events, gaps and snapshots survive; appends go on") {
  TempDir dir;
  auto log = OpenRw(dir.path());
  std::vector<Event> batch;
  for (int i = 0; i < 20000; ++i) batch.push_back(Ranges(1, i * 4096, (i + 1) * 4096, i));
  batch.push_back(Failed(1));
  REQUIRE(log->Append(batch).ok());
  REQUIRE(log->PutSnapshot("state", 20001, "snapshot-bytes").ok());
  std::vector<uint64_t> drop;
  for (uint64_t s = 1; s <= 20000; ++s)
    if (s % 100 != 0) drop.push_back(s);
  REQUIRE(log->DropEvents(drop).ok());
  uint64_t before = log->file_bytes();
  auto r = log->Rewrite();
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->bytes_before == before);
  CHECK(r->bytes_after < before / 4);
  CHECK(log->file_bytes() == r->bytes_after);
  CHECK_FALSE(log->Replaced());
  CHECK_FALSE(std::filesystem::exists(LogDir(dir.path()) + ".compact"));
  Seen s = ReadSeen(*log);
  REQUIRE_MESSAGE(s.status.ok(), s.status.ToString());
  CHECK(s.seqs.size() == 201);
  CHECK(s.gaps.size() == 200);
  auto snap = log->GetSnapshot("state");
  REQUIRE(snap.ok());
  REQUIRE(snap->has_value());
  CHECK((*snap)->bytes == "snapshot-bytes");
  auto seqs = log->Append({Failed(2)});
  REQUIRE(seqs.ok());
  CHECK((*seqs)[0] == 20002);
  CHECK(log->format_version() == 2);
}

TEST_CASE("a reader open across a rewrite keeps its consistent old copy and sees it replaced") {
  TempDir dir;
  {
    auto log = OpenRw(dir.path());
    Fill(*log, 50);
  }
  int to_child[2], to_parent[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(to_parent) == 0);
  pid_t pid = ForkChild([&] {
    auto ro = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    if (!ro.ok()) return 1;
    char c = 'r';
    if (::write(to_parent[1], &c, 1) != 1 || ::read(to_child[0], &c, 1) != 1) return 2;
    Seen s = ReadSeen(**ro);  // the old directory, unlinked now: still whole
    if (!s.status.ok() || s.seqs.size() != 50) return 3;
    if (!(*ro)->Replaced()) return 4;
    ro->reset();
    auto again = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    if (!again.ok()) return 5;
    s = ReadSeen(**again);
    return s.status.ok() && s.seqs.size() == 50 && s.gaps.size() == 1 ? 0 : 6;
  });
  char c;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  {
    auto log = OpenRw(dir.path());
    REQUIRE(log->DropEvents({10, 11}).ok());
    REQUIRE(log->Append({Failed(51), Failed(52)}).ok());
    REQUIRE(log->Rewrite().ok());
  }
  REQUIRE(::write(to_child[1], &c, 1) == 1);
  CHECK(WaitChild(pid) == 0);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
}

TEST_CASE("a crash at each step of a rewrite leaves a whole log (old or new)") {
  // Both swaps: the atomic exchange (linux) and the two renames (posix, file systems without
  // the exchange), where a crash at "set-aside" leaves the log only at log.old.
  const bool posix = std::string(platform::Name()) == "posix";
  for (bool renames : {false, true}) {
  std::vector<std::string> steps = {"copying", "copied", "closed", "exchanged", "synced",
                                    "removed"};
  if (renames || posix) steps.insert(steps.begin() + 3, "set-aside");
  for (const std::string& step : steps) {
    CAPTURE(renames);
    CAPTURE(step);
    TempDir dir(TempDir::kFast);
    {
      auto log = OpenRw(dir.path());
      Fill(*log, 200);
      std::vector<uint64_t> drop;
      for (uint64_t s = 2; s < 200; s += 2) drop.push_back(s);
      REQUIRE(log->DropEvents(drop).ok());
    }
    pid_t pid = ForkChild([&] {
      EventLog::Options o;
      o.rename_swap = renames;
      o.on_rewrite_step = [step](const char* now) {
        if (now == step) ::_exit(42);
      };
      auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite, o);
      if (!log.ok()) return 1;
      auto r = (*log)->Rewrite();
      return r.ok() ? 0 : 2;
    });
    REQUIRE(WaitChild(pid) == 42);
    // Without the exchange the old log waits at log.old from the first rename to its removal.
    const bool aside = (renames || posix) &&
                       (step == "set-aside" || step == "exchanged" || step == "synced");
    CHECK(std::filesystem::exists(LogDir(dir.path()) + ".old") == aside);
    CHECK(std::filesystem::exists(LogDir(dir.path())) == (step != "set-aside"));
    for (auto mode : {EventLog::Mode::kReadOnly, EventLog::Mode::kReadWrite}) {
      auto log = EventLog::Open(dir.path(), mode);
      REQUIRE_MESSAGE(log.ok(), log.status().ToString());
      Seen s = ReadSeen(**log);
      REQUIRE_MESSAGE(s.status.ok(), s.status.ToString());
      CHECK(s.seqs.size() == 101);
      CHECK((*log)->LastSeq() == 200);
      if (mode == EventLog::Mode::kReadWrite) {
        REQUIRE((*log)->Rewrite().ok());  // clears the leftover
        CHECK(ReadSeen(**log).seqs.size() == 101);
        REQUIRE((*log)->Append({Failed(201)}).ok());
      }
    }
    CHECK_FALSE(std::filesystem::exists(LogDir(dir.path()) + ".compact"));
    CHECK_FALSE(std::filesystem::exists(LogDir(dir.path()) + ".old"));
  }
  }
}

TEST_CASE("SIGKILL at random instants of repeated rewrites never loses the log") {
  TempDir dir(TempDir::kFast);
  {
    auto log = OpenRw(dir.path());
    std::vector<Event> batch;
    for (int i = 0; i < 5000; ++i) batch.push_back(Ranges(1, i, i + 1, i));
    batch.push_back(Failed(1));
    REQUIRE(log->Append(batch).ok());
    std::vector<uint64_t> drop;
    for (uint64_t s = 1; s <= 5000; s += 3) drop.push_back(s);
    REQUIRE(log->DropEvents(drop).ok());
  }
  for (int round = 0; round < 8; ++round) {
    CAPTURE(round);
    pid_t pid = ForkChild([&] {
      EventLog::Options o;
      o.rename_swap = round % 2 == 1;  // odd rounds: the posix swap (two renames)
      auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite, o);
      if (!log.ok()) return 1;
      for (;;)
        if (!(*log)->Rewrite().ok()) return 2;
    });
    ::usleep(static_cast<useconds_t>(3000 + round * 2500));
    ::kill(pid, SIGKILL);
    int rc = WaitChild(pid);
    CHECK((rc == 128 + SIGKILL));
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    REQUIRE_MESSAGE(log.ok(), log.status().ToString());
    Seen s = ReadSeen(**log);
    REQUIRE_MESSAGE(s.status.ok(), s.status.ToString());
    CHECK(s.seqs.size() == 5001 - 1667);
  }
}
