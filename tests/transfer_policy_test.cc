// The transfer runner's decisions that are pure functions of numbers and times:
// when bytes are made durable (engine/transfer_cadence.h), how many fetches run and when one
// is split (engine/transfer_parallel.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "base/byte_range.h"
#include "engine/transfer_cadence.h"
#include "engine/transfer_parallel.h"

using namespace modelsync;
using namespace modelsync::engine;

// The transfer runner's cadence, decided by pure functions (issue 14: each part testable
// alone).
TEST_CASE("cadence: when bytes are synced, small files adopted and pages dropped") {
  using std::chrono::milliseconds;
  // Sync: nothing waiting never syncs; enough bytes, enough time, or the end of the fetch do.
  CHECK_FALSE(SyncDue(0, milliseconds(10'000), false));
  CHECK_FALSE(SyncDue(1, milliseconds(499), true));
  CHECK(SyncDue(1, kSyncInterval, true));
  CHECK(SyncDue(kSyncBytes, milliseconds(0), true));
  CHECK_FALSE(SyncDue(kSyncBytes - 1, milliseconds(0), true));
  CHECK(SyncDue(1, milliseconds(0), false));
  // Small files: a batch goes when full, old, or last.
  CHECK_FALSE(SmallBatchDue(0, milliseconds(1000), true, false));
  CHECK_FALSE(SmallBatchDue(1, milliseconds(99), false, false));
  CHECK(SmallBatchDue(1, kSmallBatchAge, false, false));
  CHECK(SmallBatchDue(kSmallBatchFiles, milliseconds(0), false, false));
  CHECK(SmallBatchDue(1, milliseconds(0), true, false));
  // Group commit: while one adoption is queued or running the next waits, however many files
  // or however long; the last batch does not.
  CHECK_FALSE(SmallBatchDue(kSmallBatchFiles * 4, milliseconds(0), false, true));
  CHECK_FALSE(SmallBatchDue(1, kSmallBatchAge * 10, false, true));
  CHECK(SmallBatchDue(1, milliseconds(0), true, true));
  // Page cache: writeback every kWritebackBytes; drops stay below both prefixes, in steps.
  CHECK_FALSE(WritebackDue(kWritebackBytes - 1, 0));
  CHECK(WritebackDue(2 * kWritebackBytes, kWritebackBytes));
  CHECK(DroppableRange(kDropBytes - 1, 100 * kDropBytes, 0).size() == 0);
  CHECK(DroppableRange(3 * kDropBytes, 2 * kDropBytes, 0) == ByteRange{0, 2 * kDropBytes});
  CHECK(DroppableRange(3 * kDropBytes, 5 * kDropBytes, kDropBytes) ==
        ByteRange{kDropBytes, 3 * kDropBytes});
  CHECK(DroppableRange(2 * kDropBytes, 2 * kDropBytes, 2 * kDropBytes).size() == 0);
}

TEST_CASE("parallel: where a running fetch is split") {
  constexpr uint64_t MiB = 1ull << 20;
  // Too little left to share: no split.
  CHECK(SplitPoint(0, 2 * kMinSplitPiece - 1) == 0);
  CHECK(SplitPoint(100 * MiB, 100 * MiB) == 0);
  CHECK(SplitPoint(100 * MiB, 50 * MiB) == 0);
  // Halfway, on a MiB boundary, both halves at least kMinSplitPiece.
  CHECK(SplitPoint(0, 64 * MiB) == 32 * MiB);
  CHECK(SplitPoint(10 * MiB + 5, 42 * MiB) == 27 * MiB);
  for (uint64_t next : {uint64_t{0}, uint64_t{1}, 3 * MiB + 17, 77 * MiB - 1})
    for (uint64_t len : {2 * kMinSplitPiece, 2 * kMinSplitPiece + 1, 9 * MiB + 3, 300 * MiB}) {
      uint64_t p = SplitPoint(next, next + len);
      CAPTURE(next);
      CAPTURE(len);
      if (p == 0) continue;
      CHECK(p % kSplitAlign == 0);
      CHECK(p > next);
      CHECK(next + len - p >= kMinSplitPiece);
    }
}

TEST_CASE("parallel: a slow fetch's last MiB are shared in pieces that last half a second") {
  using std::chrono::milliseconds;
  constexpr uint64_t MiB = 1ull << 20, MB = 1000000;
  // Rate not known yet (too early, or nothing got): the 4 MiB floor.
  CHECK(SplitPieceFor(MB, kRateKnownAfter - milliseconds(1)) == kMinSplitPiece);
  CHECK(SplitPieceFor(0, milliseconds(2000)) == kMinSplitPiece);
  // 2 MB/s: 1 MB in 500 ms, so one whole MiB; 5 MB/s: 2.5 MB, so 3 MiB; 50 MB/s: the floor.
  CHECK(SplitPieceFor(2 * MB, milliseconds(1000)) == 1 * MiB);
  CHECK(SplitPieceFor(5 * MB, milliseconds(1000)) == 3 * MiB);
  CHECK(SplitPieceFor(50 * MB, milliseconds(1000)) == kMinSplitPiece);
  // A fetch at 2 MB/s with 3 MiB left (1.6 s): split in two halves of 1.5 MiB. Before the
  // pieces followed the rate (4 MiB at least), it ran on alone while the others idled.
  const RunningFetch slow{10 * MiB, 13 * MiB, 10 * MiB - 2 * MB, milliseconds(1000)};
  CHECK(SplitPoint(slow.next, slow.end) == 0);
  CHECK(SplitPointOf(slow) == 12 * MiB);
  CHECK(ChooseSplit({slow}) == 0);
  // The same 3 MiB at 50 MB/s: 0.06 s left, and 4 MiB pieces: never split.
  const RunningFetch fast{10 * MiB, 13 * MiB, 10 * MiB - 50 * MB, milliseconds(1000)};
  CHECK(SplitPointOf(fast) == 0);
  CHECK(ChooseSplit({fast}) == -1);
  // 1.5 MiB left at 2 MB/s (0.8 s): too short to be worth another request.
  const RunningFetch tail{10 * MiB, 10 * MiB + 3 * MiB / 2, 10 * MiB - 2 * MB, milliseconds(1000)};
  CHECK(ChooseSplit({tail}) == -1);
}

TEST_CASE("parallel: a fetch is split only when it would run on long enough to pay for it") {
  using std::chrono::milliseconds;
  constexpr uint64_t MB = 1000000;
  // Rate not known yet.
  CHECK(SecondsLeft(100 * MB, 10 * MB, kRateKnownAfter - milliseconds(1)) < 0);
  CHECK(SecondsLeft(100 * MB, 0, kRateKnownAfter) < 0);
  // 25 MB/s with 100 MB to go: 4 s, worth a split; loopback at 250 MB/s: 0.4 s, not.
  CHECK(SecondsLeft(100 * MB, 10 * MB, milliseconds(400)) == doctest::Approx(4.0));
  CHECK(SplitWorthIt(SecondsLeft(100 * MB, 10 * MB, milliseconds(400))));
  CHECK_FALSE(SplitWorthIt(SecondsLeft(100 * MB, 100 * MB, milliseconds(400))));
  // Nothing for a whole kSplitWorth: stalled, split.
  CHECK(SplitWorthIt(SecondsLeft(MB, 0, kSplitWorth)));
  CHECK_FALSE(SplitWorthIt(-1));
}

TEST_CASE("parallel: of the running fetches, the one that would run longest is split") {
  using std::chrono::milliseconds;
  constexpr uint64_t MiB = 1ull << 20;
  // Over 400 ms since the mark: a fast one (40 MiB got, 60 left: 0.6 s), a slow one (4 MiB got,
  // 40 left: 4 s), a slower one (1 MiB got, 6 left: 2.4 s, in pieces of at least 2 MiB), one
  // whose rate is not known yet (marked 100 ms ago).
  std::vector<RunningFetch> f = {
      {40 * MiB, 100 * MiB, 0, milliseconds(400)},
      {104 * MiB, 144 * MiB, 100 * MiB, milliseconds(400)},
      {200 * MiB, 206 * MiB, 199 * MiB, milliseconds(400)},
      {300 * MiB, 500 * MiB, 299 * MiB, milliseconds(100)},
  };
  CHECK(ChooseSplit(f) == 1);
  f[1].next = f[1].marked + 40 * MiB;  // now it went as fast as the first: the slower one
  f[1].end = f[1].next + 40 * MiB;
  CHECK(ChooseSplit(f) == 2);
  f[2].end = f[2].next + 3 * MiB / 2;  // 1.5 MiB left (0.6 s): none is worth it
  CHECK(ChooseSplit(f) == -1);
  f[3].since_mark = milliseconds(2000);  // 1 MiB in 2 s with 199 MiB to go: that one
  CHECK(ChooseSplit(f) == 3);
  CHECK(ChooseSplit({}) == -1);
}

TEST_CASE("parallel: connections double while the rate grows, and step back when it does not") {
  using std::chrono::milliseconds;
  Clock::TimePoint t{};
  uint64_t bytes = 0;
  // Feeds `windows` full rate windows at `rate_per_conn` bytes/s per allowed connection, the
  // link carrying at most `link` bytes/s in all.
  auto run = [&](ConnectionGovernor& g, int windows, double rate_per_conn, double link) {
    for (int w = 0; w < windows; ++w)
      for (int step = 0; step < 6; ++step) {  // 50 ms control passes
        double rate = std::min(link, rate_per_conn * g.target());
        t += milliseconds(50);
        bytes += static_cast<uint64_t>(rate * 0.05);
        g.Observe(t, bytes, true);
      }
  };
  SUBCASE("a per-connection cap: grows to the cap") {
    ConnectionGovernor g(32);
    CHECK(g.target() == kStartConnections);
    run(g, 20, 50e6, 1e12);
    CHECK(g.target() == 32);
    CHECK(g.settled());
  }
  SUBCASE("a full link: one step up, then back") {
    ConnectionGovernor g(16);
    run(g, 20, 200e6, 1e9);  // 8 connections already fill 1 GB/s
    CHECK(g.target() == 8);
    CHECK(g.settled());
  }
  SUBCASE("reopened when the link changes under it: judges again from where it is") {
    ConnectionGovernor g(32);
    run(g, 20, 200e6, 1e9);  // settled at 8: a step that did not pay (fetches waiting)
    REQUIRE(g.settled());
    REQUIRE(g.target() == 8);
    g.Reopen();  // the pull began writing ahead: every connection runs at its cap now
    CHECK_FALSE(g.settled());
    CHECK(g.target() == 8);
    run(g, 20, 50e6, 1e12);
    CHECK(g.target() == 32);
    CHECK(g.settled());
    g.Reopen();  // at the cap: nothing to judge
    CHECK(g.settled());
  }
  SUBCASE("fills at 16: stays at 16 when 32 gives nothing") {
    ConnectionGovernor g(64);
    run(g, 30, 50e6, 800e6);
    CHECK(g.target() == 16);
    CHECK(g.settled());
  }
  SUBCASE("a far link starts at 16, and still doubles while the rate grows") {
    CHECK(StartConnections(0) == kStartConnections);  // not measured
    CHECK(StartConnections(9'999) == kStartConnections);
    CHECK(StartConnections(10'000) == kFarStartConnections);
    ConnectionGovernor g(64, StartConnections(30'000));
    CHECK(g.target() == 16);
    CHECK_FALSE(g.settled());
    run(g, 20, 50e6, 1e12);
    CHECK(g.target() == 64);
    ConnectionGovernor capped(16, kFarStartConnections);
    CHECK(capped.target() == 16);
    CHECK(capped.settled());
    ConnectionGovernor low(4, kFarStartConnections);
    CHECK(low.target() == 4);
  }
  SUBCASE("a cap below the start") {
    ConnectionGovernor g(3);
    CHECK(g.target() == 3);
    CHECK(g.settled());
  }
  SUBCASE("windows without every connection busy are not measured") {
    ConnectionGovernor g(16);
    for (int i = 0; i < 100; ++i) {
      t += milliseconds(50);
      bytes += 10'000'000;
      g.Observe(t, bytes, false);
    }
    CHECK(g.target() == 8);
    CHECK_FALSE(g.settled());
  }
}

TEST_CASE("ranges: as short as keeps a round trip small against the time a range takes") {
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  RangeSizer sizer;
  CHECK(sizer.bytes() == kMinRange);  // nothing measured yet
  // Loopback: a 0.2 ms round trip at 150 MB/s a connection: the floor.
  sizer.Observe(microseconds(200), 32ull << 20, milliseconds(220));
  CHECK(sizer.bytes() == kMinRange);
  // A fetch too short to say anything of the rate is not counted.
  sizer.Observe(milliseconds(500), 4096, milliseconds(1));
  CHECK(sizer.bytes() == kMinRange);
  // The throttled link of the benchmark: 30 ms a request, 50 MB/s a connection: ranges of
  // 16 round trips' worth, ~23 MiB (a whole number of MiB), reached in steps.
  RangeSizer slow;
  slow.Observe(milliseconds(30), 50'000'000, std::chrono::seconds(1));
  CHECK(slow.bytes() == 23ull << 20);
  CHECK(slow.bytes() % (1ull << 20) == 0);
  sizer.Observe(milliseconds(30), 50'000'000, std::chrono::seconds(1));
  const uint64_t one = sizer.bytes();
  CHECK(one > kMinRange);
  CHECK(one < slow.bytes());  // a weighted average: one slow fetch moves it part of the way
  for (int i = 0; i < 30; ++i) sizer.Observe(milliseconds(30), 50'000'000, std::chrono::seconds(1));
  CHECK(sizer.bytes() == slow.bytes());
  // A long fat link: capped.
  RangeSizer fat;
  fat.Observe(milliseconds(100), 500'000'000, std::chrono::seconds(1));
  CHECK(fat.bytes() == kMaxRange);
}

TEST_CASE("ranges: the last of a file are shared out so that they end together") {
  const uint64_t M = 1ull << 20;
  CHECK(ShareOf(64 * M, 1024 * M, 16) == 64 * M);  // plenty left: the sizer's size
  CHECK(ShareOf(64 * M, 400 * M, 16) == 25 * M);   // 400 MiB over 16 connections
  CHECK(ShareOf(64 * M, 401 * M, 16) == 26 * M);   // rounded up to whole MiB
  CHECK(ShareOf(64 * M, 20 * M, 16) == 16 * M);    // never below a quarter of the want
  CHECK(ShareOf(8 * M, 20 * M, 16) == kMinRange);   // nor below the floor
  CHECK(ShareOf(8 * M, 400 * M, 0) == 8 * M);      // no connections counted: one
}

TEST_CASE("window: a near link writes ahead once fetches wait on a link slow for the CPU") {
  const double hash = 1.9e9;  // the hashing thread's bytes per busy second
  CHECK_FALSE(WriteAheadDue(false, 200e6, hash));  // nothing refused: nothing lost by waiting
  CHECK(WriteAheadDue(true, 200e6, hash));         // refused, a capped link: room for read-back
  CHECK_FALSE(WriteAheadDue(true, 725e6, hash));   // refused, but the CPU is busy already
  CHECK_FALSE(WriteAheadDue(true, 1.2e9, hash));   // loopback: the CPU is the limit
  CHECK_FALSE(WriteAheadDue(true, 200e6, 0));      // the hashing's speed not known yet
  CHECK_FALSE(WriteAheadDue(true, kWriteAheadShare * hash, hash));
}

TEST_CASE("window: the write-ahead decision takes two windows in a row") {
  using std::chrono::milliseconds;
  Clock::TimePoint t{};
  uint64_t received = 0, refusals = 0;
  const uint64_t hashed = 64u << 20, busy_ns = 40'000'000;  // 1.68 GB/s of busy time
  WriteAheadWatch w(t);
  // A window at 200 MB/s, fetches waiting: due, but once is not enough.
  auto window = [&](double rate, bool waiting, uint64_t h = 64u << 20) {
    t += milliseconds(200);
    received += static_cast<uint64_t>(rate * 0.2);
    return w.Observe(t, received, refusals, waiting, h, busy_ns);
  };
  CHECK_FALSE(w.Observe(t + milliseconds(100), 0, 0, true, hashed, busy_ns));  // no window yet
  CHECK_FALSE(window(200e6, true));
  CHECK(window(200e6, true));  // the second in a row
  SUBCASE("a dip between full windows never is") {
    WriteAheadWatch v(t);
    w = v;
    for (int i = 0; i < 10; ++i) {
      CHECK_FALSE(window(200e6, true));
      CHECK_FALSE(window(900e6, true));
    }
  }
  SUBCASE("nothing waited, or the hashing's speed not known: never") {
    WriteAheadWatch v(t);
    w = v;
    for (int i = 0; i < 5; ++i) CHECK_FALSE(window(200e6, false));
    for (int i = 0; i < 5; ++i) CHECK_FALSE(window(200e6, true, 1u << 20));
    ++refusals;  // refused in this window though none waits at its end: it counts
    CHECK_FALSE(window(200e6, false));
    ++refusals;
    CHECK(window(200e6, false));
  }
}

TEST_CASE("ranges: on a far link, fetches launched together are staggered to end one by one") {
  constexpr uint64_t M = 1ull << 20;
  // 16 connections wanting 32 MiB each: a gap of 2 MiB between ends.
  CHECK(Staggered(32 * M, 0, 16) == kMinRange);            // nothing running: the floor
  CHECK(Staggered(32 * M, 4 * M, 16) == 6 * M);            // 2 MiB after the longest
  CHECK(Staggered(32 * M, 4 * M + 1, 16) == 7 * M);        // whole MiB, rounded up
  CHECK(Staggered(32 * M, 31 * M, 16) == 32 * M);          // never above the want
  CHECK(Staggered(32 * M, 30 * M, 16) == 32 * M);          // the steady state: whole ranges
  CHECK(Staggered(32 * M, 0, 1) == 32 * M);                // one connection: nothing to stagger
  // A burst of 16 launches into an idle link (each launch counts as running): the sizes
  // climb from the floor to the want, so the fetches end in file order, a gap apart.
  uint64_t longest = 0, prev = 0;
  std::vector<uint64_t> sizes;
  for (int i = 0; i < 16; ++i) {
    const uint64_t size = Staggered(24 * M, longest, 16);
    CHECK(size >= prev);
    prev = size;
    longest = std::max(longest, size);
    sizes.push_back(size);
  }
  CHECK(sizes.front() == kMinRange);
  CHECK(sizes.back() == 24 * M);
  CHECK(sizes[1] == kMinRange + 2 * M);  // 4 MiB running + 24/16 = 1.5 MiB, rounded up
}

TEST_CASE("ranges: cut from the front of what is left, on 1 MiB boundaries, no crumbs") {
  const uint64_t M = 1ull << 20;
  // A planner chunk, cut in file order.
  CHECK(NextRange({0, 64 * M}, 4 * M) == ByteRange{0, 4 * M});
  CHECK(NextRange({60 * M, 64 * M}, 4 * M) == ByteRange{60 * M, 64 * M});
  // What is left after the cut, if shorter than kMinSplitPiece, goes with it.
  CHECK(NextRange({0, 4 * M + 5}, 4 * M) == ByteRange{0, 4 * M + 5});
  CHECK(NextRange({0, 9 * M}, 4 * M) == ByteRange{0, 4 * M});
  // A resumed range starting mid-MiB ends on a boundary.
  CHECK(NextRange({M + 123, 40 * M}, 4 * M) == ByteRange{M + 123, 5 * M});
}
