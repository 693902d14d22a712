// The event log and the root lock across real processes: SIGKILLed writers and readers,
// racing writers, readers beside a writer.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "storage/event_log.h"
#include "storage/root_lock.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using modelsync::testing::ForkChild;
using modelsync::testing::Ranges;
using modelsync::testing::TempDir;
using modelsync::testing::WaitChild;
using modelsync::v1::Event;

namespace {

void MakeRangesLog(const std::string& root, int n) {
  auto log = EventLog::Open(root, EventLog::Mode::kReadWrite);
  REQUIRE(log.ok());
  std::vector<Event> batch;
  for (int i = 1; i <= n; ++i) batch.push_back(Ranges(1, i, i + 1, i));
  REQUIRE((*log)->Append(batch).ok());
}

}  // namespace

TEST_CASE("a writer killed with SIGKILL mid-stream leaves whole batches only") {
  TempDir dir;
  const uint64_t kBatch = 64;
  std::mt19937 rng(11);
  uint64_t expected_batches = 0;
  for (int round = 0; round < 6; ++round) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_t pid = ForkChild([&] {
      ::close(ready[0]);
      auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite);
      if (!log.ok()) return 2;
      bool told = false;
      for (uint64_t b = 0;; ++b) {
        std::vector<Event> batch;
        for (uint64_t i = 0; i < kBatch; ++i)
          batch.push_back(Ranges(b, i, kBatch, static_cast<int64_t>(round)));
        if (!(*log)->Append(batch).ok()) return 3;
        if (!told && b >= 3) {
          told = true;
          (void)!::write(ready[1], "r", 1);
        }
      }
    });
    ::close(ready[1]);
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    ::kill(pid, SIGKILL);
    CHECK(WaitChild(pid) == 128 + SIGKILL);

    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite);
    REQUIRE_MESSAGE(log.ok(), log.status().ToString());
    uint64_t n = 0, in_batch = 0, batches = 0;
    Status s = (*log)->Replay(0, [&](uint64_t seq, const Event& e) {
      const auto& r = e.ranges_committed();
      if (seq != ++n) return Status::Corruption("seq");
      if (r.ranges(0).begin() != in_batch || r.ranges(0).end() != kBatch)
        return Status::Corruption("batch torn at #" + std::to_string(seq));
      if (++in_batch == kBatch) {
        in_batch = 0;
        ++batches;
      }
      return Status::Ok();
    });
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(in_batch == 0);  // no partial batch at the end
    CHECK(n % kBatch == 0);
    CHECK(batches >= expected_batches + 4);
    expected_batches = batches;
    CHECK((*log)->LastSeq() == n);
  }
}

TEST_CASE("two processes race for the writer lock: one wins, the other names it") {
  TempDir dir;
  for (int round = 0; round < 3; ++round) {
    int go[2], res[2], done[2];
    REQUIRE(::pipe(go) == 0);
    REQUIRE(::pipe(res) == 0);
    REQUIRE(::pipe(done) == 0);
    std::vector<pid_t> kids;
    for (int k = 0; k < 2; ++k) {
      kids.push_back(ForkChild([&] {
        ::close(go[1]);
        ::close(done[1]);
        char c;
        if (::read(go[0], &c, 1) != 1) return 2;
        auto lock = RootLock::Acquire(dir.path(), false);
        std::string line =
            lock.ok() ? "W " + std::to_string(::getpid()) : "L " + lock.status().message();
        line.resize(200, ' ');
        (void)!::write(res[1], line.data(), line.size());
        // The winner holds the lock until the parent has both answers (it closes `done`), so
        // the other's attempt surely met it held.
        ::close(res[1]);
        if (lock.ok()) (void)!::read(done[0], &c, 1);
        return lock.ok() ? 0 : 1;
      }));
    }
    ::close(go[0]);
    ::close(res[1]);
    REQUIRE(::write(go[1], "gg", 2) == 2);
    ::close(go[1]);
    std::vector<std::string> lines;
    char buf[200];
    while (::read(res[0], buf, sizeof(buf)) == static_cast<ssize_t>(sizeof(buf)))
      lines.emplace_back(buf, sizeof(buf));
    ::close(res[0]);
    ::close(done[0]);
    ::close(done[1]);  // the winner lets go
    int rc0 = WaitChild(kids[0]), rc1 = WaitChild(kids[1]);
    CHECK(rc0 + rc1 == 1);  // exactly one winner
    REQUIRE(lines.size() == 2);
    std::string win = lines[0][0] == 'W' ? lines[0] : lines[1];
    std::string lose = lines[0][0] == 'W' ? lines[1] : lines[0];
    REQUIRE(win[0] == 'W');
    REQUIRE(lose[0] == 'L');
    std::string pid = win.substr(2, win.find(' ', 2) - 2);
    CHECK_MESSAGE(
        lose.find("root " + dir.path() + " is in use by pid " + pid + " ") != std::string::npos,
        lose);
  }
}

TEST_CASE("the lock file: the holder's pid in a fixed-width record over an earlier holder's") {
  TempDir dir;
  const std::string path = JoinPath(StateDir(dir.path()), "lock");
  REQUIRE(MakeDirs(StateDir(dir.path())).ok());
  REQUIRE(WriteFileAtomic(path, "4194303\n").ok());  // what an earlier version left
  auto lock = RootLock::Acquire(dir.path(), false);
  REQUIRE(lock.ok());
  CHECK(RootLock::Holder(dir.path()) == ::getpid());
  std::string want = std::to_string(::getpid());
  want.resize(10, ' ');
  want += '\n';
  auto held = ReadFile(path);
  REQUIRE(held.ok());
  CHECK(*held == want);
}

TEST_CASE("the lock: conflicts in-process too, waits when asked, dies with its holder") {
  TempDir dir;
  {
    auto a = RootLock::Acquire(dir.path(), false);
    REQUIRE(a.ok());
    CHECK(RootLock::Holder(dir.path()) == ::getpid());
    auto b = RootLock::Acquire(dir.path(), false);
    CHECK(b.status().IsLocked());
  }
  CHECK(RootLock::Holder(dir.path()) == 0);
  int ready[2], go[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(go) == 0);
  pid_t pid = ForkChild([&] {
    auto l = RootLock::Acquire(dir.path(), false);
    char g;
    (void)!::write(ready[1], "r", 1);
    (void)!::read(go[0], &g, 1);  // holds it until the parent waits for it
    return l.ok() ? 0 : 1;  // exits holding it: the kernel lets go
  });
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  int waited_for = -1;
  auto lock = RootLock::Acquire(dir.path(), true, [&](int holder) {
    waited_for = holder;
    (void)!::write(go[1], "g", 1);
  });
  CHECK(lock.ok());
  CHECK(waited_for == pid);
  CHECK(WaitChild(pid) == 0);
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
}

TEST_CASE("a read-only open works while another process writes, across map growth") {
  TempDir dir;
  int to_child[2], to_parent[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(to_parent) == 0);
  pid_t pid = ForkChild([&] {
    auto lock = RootLock::Acquire(dir.path(), false);
    EventLog::Options o;
    o.initial_map_bytes = 64 << 10;
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite, o);
    if (!lock.ok() || !log.ok()) return 2;
    char c;
    std::mt19937 rng(3);
    for (int step = 0; step < 2; ++step) {
      std::vector<Event> batch;
      for (int i = 0; i < (step == 0 ? 100 : 4000); ++i) {
        batch.push_back(Ranges(step, i, i + 1, 1));
        if (step == 1) {  // ~1 MB of incompressible text: the map must grow several times
          std::string noise(250, 'a');
          for (char& ch : noise) ch = static_cast<char>('a' + rng() % 26);
          batch.back().mutable_sync_failed()->set_reason(noise);
        }
      }
      if (!(*log)->Append(batch).ok()) return 3;
      (void)!::write(to_parent[1], "a", 1);
      if (::read(to_child[0], &c, 1) != 1) return 4;
    }
    return (*log)->map_bytes() > (64 << 10) ? 0 : 5;
  });
  char c;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  {
    auto ro = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    REQUIRE_MESSAGE(ro.ok(), ro.status().ToString());
    CHECK((*ro)->LastSeq() == 100);
    auto second = RootLock::Acquire(dir.path(), false);
    CHECK(second.status().IsLocked());
    CHECK(second.status().message().find("pid " + std::to_string(pid)) != std::string::npos);
    REQUIRE(::write(to_child[1], "n", 1) == 1);
    REQUIRE(::read(to_parent[0], &c, 1) == 1);
    CHECK((*ro)->LastSeq() == 4100);  // sees the writer's next batch without reopening
    std::vector<std::pair<uint64_t, Event>> out;
    Status s = (*ro)->Read(0, SIZE_MAX, &out);
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(out.size() == 4100);
  }
  REQUIRE(::write(to_child[1], "n", 1) == 1);
  CHECK(WaitChild(pid) == 0);
}

TEST_CASE("a reader killed inside a read transaction leaves a slot that Open clears") {
  // LMDB resets its reader table when the first process opens the environment, so the stale
  // slot only survives while another process keeps it open: a holder child does.
  TempDir dir;
  MakeRangesLog(dir.path(), 10);
  int ready[2], release[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(release) == 0);
  pid_t holder = ForkChild([&] {
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    (void)!::write(ready[1], "h", 1);
    char ch;
    (void)!::read(release[0], &ch, 1);
    return log.ok() ? 0 : 2;
  });
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  pid_t reader = ForkChild([&] {
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    if (!log.ok()) return 2;
    (void)(*log)->Replay(0, [&](uint64_t, const Event&) {
      (void)!::write(ready[1], "r", 1);
      for (;;) ::pause();  // killed here, read transaction open
      return Status::Ok();
    });
    return 3;
  });
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::kill(reader, SIGKILL);
  CHECK(WaitChild(reader) == 128 + SIGKILL);
  {
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite);
    REQUIRE(log.ok());
    CHECK((*log)->stale_readers_cleared() == 1);
  }
  REQUIRE(::write(release[1], "x", 1) == 1);
  CHECK(WaitChild(holder) == 0);
}
