// How many fetches the transfer runner keeps in flight, and when it splits a running range
// (issue 20): pure decisions over numbers and times (no I/O, no clock of their own), tested
// alone (tests/transfer_policy_test.cc "parallel"); the runner only carries them out.
//
// Connections. TransferRunnerOptions::connections is a cap, not a fixed number. The runner
// starts with kStartConnections (or the cap, if lower; kFarStartConnections on a far link,
// see StartConnections) and doubles the count while the
// aggregate rate still grows: after each change it lets the new fetches settle for one
// window, measures the next window, and keeps the step only if the rate rose by at least
// kGrowthNeeded; otherwise it goes back to the last count that paid and stays there. A link
// whose every connection is capped (a CDN's per-connection limit) gets more connections; a
// link that is already full (loopback, a --max-rate) keeps the count it has. Windows in
// which fewer fetches ran than allowed (not enough work) are not measured.
//
// Splitting. When a connection is free and nothing is left to launch, the fetch that would
// run longest at its own rate is split: it stops at SplitPointOf() and a new fetch takes the
// rest, so the last bytes of a file are not left to one connection while the others idle.
// Each part is at least what the fetch brings in over kSplitPieceTime (1-4 MiB).
// The cut fetch writes up to its new end and then ends itself (its sink returns kCancelled).
// A cut costs a round trip and the bytes already on their way to the cut fetch (the
// bandwidth-delay product plus socket buffers: on loopback 2-10 MiB), so a fetch is split
// only when it would still run for kSplitWorth at the rate it had over the kRateKnownAfter
// since a connection fell idle: where the link (or the disk) and not the connection is what
// limits, the fetches left speed up as others end, and none is split.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "base/byte_range.h"
#include "base/clock.h"

namespace modelsync::engine {

inline constexpr int kStartConnections = 8;
// A link whose quickest API answer took kFarRoundTrip or more starts with
// kFarStartConnections: one connection's TCP rate falls with the round trip, and the
// governor's first doubling comes only after two windows (~0.6 s at 8, a quarter of a 1 GiB
// pull at 50 MB/s per connection; measured on the throttled link: 2.36 -> 2.11 s). Loopback
// and a LAN (well under a millisecond) keep 8: 16 there cost CPU and bought nothing
// (0.98 -> 1.05 s, 1.41 -> 1.50 CPU-s on the cold 1 GiB pull).
inline constexpr std::chrono::milliseconds kFarRoundTrip{10};
inline constexpr int kFarStartConnections = 16;
inline bool FarLink(uint64_t api_round_trip_us) {
  return api_round_trip_us >=
         static_cast<uint64_t>(std::chrono::microseconds(kFarRoundTrip).count());
}
inline int StartConnections(uint64_t api_round_trip_us) {
  return FarLink(api_round_trip_us) ? kFarStartConnections : kStartConnections;
}
inline constexpr std::chrono::milliseconds kRateWindow{300};
inline constexpr double kGrowthNeeded = 1.15;  // +15 % or the step is undone

// A piece split off a running fetch is cut on a kSplitAlign boundary and is at least
// kMinSplitPiece long, or, where the fetch's rate is known, what it brings in over
// kSplitPieceTime, but never less than kSplitAlign: the new request's round trip must be
// worth it. On a connection capped at 2 MB/s a 4 MiB piece ran for two seconds, and the
// last 4-8 MiB of a pull were left to one connection while the others idled (48 MiB, 8
// connections: 2 of its 4.3 s); 1 MiB pieces there last half a second. Where connections
// are fast the floor stays 4 MiB (and SplitWorthIt keeps them whole anyway).
inline constexpr uint64_t kMinSplitPiece = 4ull << 20;
inline constexpr uint64_t kSplitAlign = 1ull << 20;
inline constexpr std::chrono::milliseconds kSplitPieceTime{500};

inline constexpr std::chrono::milliseconds kSplitWorth{1500};
inline constexpr std::chrono::milliseconds kRateKnownAfter{300};

// Where a fetch whose next byte is `next` and whose end is `end` should stop so that a new
// fetch takes [point, end), each part at least `min_piece`; 0 when what is left is too short
// to share.
inline uint64_t SplitPoint(uint64_t next, uint64_t end, uint64_t min_piece = kMinSplitPiece) {
  if (end <= next || end - next < 2 * min_piece) return 0;
  uint64_t mid = next + (end - next) / 2;
  mid = (mid + kSplitAlign - 1) / kSplitAlign * kSplitAlign;
  if (mid <= next || end - mid < min_piece) return 0;
  return mid;
}

// How long a fetch that got `got` bytes in `elapsed` would still run to `left` more bytes, in
// seconds; < 0 while its rate is not known yet (it began less than kRateKnownAfter ago, or
// got nothing yet). One that got nothing in kSplitWorth (stalled) runs "forever".
inline double SecondsLeft(uint64_t left, uint64_t got, Clock::Duration elapsed) {
  if (elapsed < kRateKnownAfter) return -1;
  if (got == 0) return elapsed >= kSplitWorth ? 1e30 : -1;
  return static_cast<double>(left) * std::chrono::duration<double>(elapsed).count() /
         static_cast<double>(got);
}

inline bool SplitWorthIt(double seconds_left) {
  return seconds_left >= std::chrono::duration<double>(kSplitWorth).count();
}

// The least a piece split off a fetch may be (see kSplitPieceTime): what a fetch that got
// `got` bytes in `elapsed` brings in over kSplitPieceTime, in whole kSplitAlign units, between
// kSplitAlign and kMinSplitPiece; kMinSplitPiece while its rate is not known (SecondsLeft).
inline uint64_t SplitPieceFor(uint64_t got, Clock::Duration elapsed) {
  if (elapsed < kRateKnownAfter || got == 0) return kMinSplitPiece;
  const double per_piece = static_cast<double>(got) *
                           std::chrono::duration<double>(kSplitPieceTime).count() /
                           std::chrono::duration<double>(elapsed).count();
  if (per_piece >= static_cast<double>(kMinSplitPiece)) return kMinSplitPiece;
  const uint64_t units = static_cast<uint64_t>(per_piece / static_cast<double>(kSplitAlign)) + 1;
  return units * kSplitAlign;
}

// A running fetch as the split rule sees it: its next byte and end, and where it was
// (`marked`) when a connection fell idle, `since_mark` ago.
struct RunningFetch {
  uint64_t next = 0, end = 0;
  uint64_t marked = 0;
  Clock::Duration since_mark{};
};

// Where f would be split (SplitPoint with the least piece its rate allows), or 0.
inline uint64_t SplitPointOf(const RunningFetch& f) {
  return SplitPoint(f.next, f.end, SplitPieceFor(f.next - f.marked, f.since_mark));
}

// The fetch to split now: of those long enough to share (SplitPointOf), the one that at its
// rate since the mark would still run longest, if that is worth a split (SplitWorthIt).
// Its index, or -1 for none.
inline int ChooseSplit(const std::vector<RunningFetch>& fetches) {
  int best = -1;
  double longest = 0;
  for (size_t i = 0; i < fetches.size(); ++i) {
    const RunningFetch& f = fetches[i];
    if (SplitPointOf(f) == 0) continue;
    const double left = SecondsLeft(f.end - f.next, f.next - f.marked, f.since_mark);
    if (SplitWorthIt(left) && left > longest) {
      longest = left;
      best = static_cast<int>(i);
    }
  }
  return best;
}

class ConnectionGovernor {
 public:
  explicit ConnectionGovernor(int cap, int start = kStartConnections)
      : cap_(cap < 1 ? 1 : cap), target_(cap_ < start ? cap_ : (start < 1 ? 1 : start)) {
    settled_ = target_ >= cap_;
  }

  // Fetches allowed in flight now.
  int target() const { return target_; }
  // The most ever allowed (the --connections cap).
  int cap() const { return cap_; }
  bool settled() const { return settled_; }
  // The count proven so far: target(), unless its last step has not been judged yet (the
  // transfer ended, or ran out of work to keep every connection busy).
  int kept() const { return !settled_ && last_target_ > 0 ? last_target_ : target_; }

  // Judges again from the count it has: the link changed under it (the pull began writing
  // ahead, so fetches that waited for the memory window no longer do, and a step the window
  // made look useless may pay now). Nothing happens at the cap.
  void Reopen() {
    if (target_ >= cap_) return;
    settled_ = false;
    started_ = false;
    warming_ = true;
    last_rate_ = 0;
    last_target_ = 0;
  }

  // Called on every pass of the control loop: `received` = bytes received so far (all
  // fetches), `busy` = as many fetches in flight as target() allows.
  void Observe(Clock::TimePoint now, uint64_t received, bool busy) {
    if (settled_) return;
    if (!busy || !started_) {  // a window counts only if it ran full from its start
      Restart(now, received);
      started_ = busy;
      return;
    }
    if (now - window_start_ < kRateWindow) return;
    const double seconds = std::chrono::duration<double>(now - window_start_).count();
    const double rate = static_cast<double>(received - window_bytes_) / seconds;
    Restart(now, received);
    if (warming_) {  // the fetches launched by the last step were still starting
      warming_ = false;
      return;
    }
    if (last_rate_ > 0 && rate < last_rate_ * kGrowthNeeded) {
      target_ = last_target_;  // the step did not pay: back, and stay
      settled_ = true;
      return;
    }
    last_rate_ = rate;
    last_target_ = target_;
    target_ = target_ * 2 < cap_ ? target_ * 2 : cap_;
    warming_ = true;
    if (target_ == last_target_) settled_ = true;
  }

 private:
  void Restart(Clock::TimePoint now, uint64_t received) {
    window_start_ = now;
    window_bytes_ = received;
  }

  int cap_;
  int target_;
  bool settled_ = false;
  bool started_ = false;
  bool warming_ = true;  // the first window after the start is a warm-up too
  Clock::TimePoint window_start_{};
  uint64_t window_bytes_ = 0;
  double last_rate_ = 0;
  int last_target_ = 0;
};

// Range sizes. The runner hands each new fetch of a large file the next bytes() of it, in
// file order (the planner's chunks are only an upper bound), so that the fetches in flight
// cover a short stretch just ahead of the hashed prefix and their bytes are hashed from
// memory (transfer_state.h, the window). A range is as short as keeps a request's round
// trip (launch to first byte) at most 1/kRoundTripsPerRange of the time its bytes take at the
// rate one connection gets: on loopback (a round trip of ~0.2 ms) that is the floor,
// kMinRange; on a link with 30 ms per request and 50 MB/s per connection, 23 MiB. The round
// trip as measured includes any wait for room in the memory window (a fetch launched while
// the window is full pauses before its first byte is taken), so where the hashing is the
// limit ranges grow towards kMaxRange: fewer requests, and the order no longer matters then,
// since the fetches ahead wait anyway (cold 1 GiB on loopback: 1, 2, 4, 16 MiB and the sizer
// within noise, the sizer's larger ranges with the lowest RSS). Near the end of a file the
// ranges shrink to an equal share of what is left (ShareOf): on the throttled link of the
// benchmark (16 connections of 50 MB/s, 30 ms a request) that took the pull from 2.7-2.8 s
// to 2.3 s, the last ranges no longer leaving connections idle. Rates and
// round trips are averaged over the fetches that ended (each weighs kSizerWeight), so a
// burst of slow ones moves the size by steps. How long a kill may lose is not a range's
// business: the durability clock (transfer_cadence.h) syncs a transfer every half second
// whatever its ranges are.
inline constexpr uint64_t kMinRange = 4ull << 20;
inline constexpr uint64_t kMaxRange = 64ull << 20;
inline constexpr double kRoundTripsPerRange = 16;
inline constexpr double kSizerWeight = 0.25;

class RangeSizer {
 public:
  // A fetch that ended: `bytes` received over `transfer` after its first byte, which came
  // `round_trip` after its launch. Fetches of less than kMinRange / 4 say little of the rate
  // and are not counted.
  void Observe(Clock::Duration round_trip, uint64_t bytes, Clock::Duration transfer) {
    const double rt = std::chrono::duration<double>(round_trip).count();
    const double t = std::chrono::duration<double>(transfer).count();
    if (bytes < kMinRange / 4 || t <= 0 || rt < 0) return;
    const double rate = static_cast<double>(bytes) / t;
    if (!known_) {
      round_trip_ = rt, rate_ = rate, known_ = true;
      return;
    }
    round_trip_ += kSizerWeight * (rt - round_trip_);
    rate_ += kSizerWeight * (rate - rate_);
  }
  // The size of the next range: a multiple of 1 MiB in [kMinRange, kMaxRange].
  uint64_t bytes() const {
    if (!known_) return kMinRange;
    const double want = kRoundTripsPerRange * round_trip_ * rate_;
    if (want >= static_cast<double>(kMaxRange)) return kMaxRange;
    const uint64_t mib = (static_cast<uint64_t>(want) + (1ull << 20) - 1) >> 20 << 20;
    return mib < kMinRange ? kMinRange : mib;
  }

 private:
  bool known_ = false;
  double round_trip_ = 0;  // seconds
  double rate_ = 0;        // bytes per second, one connection
};

// The size of the next range when `left` bytes of the pull are still to launch and
// `connections` fetches are allowed: the sizer's `want`, or an equal share of what is left
// when that is less (in whole MiB, never below want / 4 nor kMinRange), so the last ranges
// of a pull end together instead of leaving one connection to run on while the others idle.
inline uint64_t ShareOf(uint64_t want, uint64_t left, int connections) {
  if (connections < 1) connections = 1;
  uint64_t share = left / static_cast<uint64_t>(connections);
  share = (share + (1ull << 20) - 1) >> 20 << 20;
  const uint64_t floor = want / 4 > kMinRange ? want / 4 : kMinRange;
  if (share < floor) share = floor;
  return share < want ? share : want;
}

// Writing ahead on a near link. Near, the fetches ahead of the hashed prefix pause while the
// memory window is full: where the CPU is what limits (loopback, 1.2 GB/s) the bytes are
// better left in the socket than written out and read back, which costs ~0.6 CPU-s per GiB.
// Where each connection is capped instead (a near CDN at 30 MB/s a connection), the prefix
// moves at its one connection's rate while the others wait, and the pull runs at a fraction
// of the link (1 GiB at 30 MB/s a connection: 3.9 s, 3.1 s writing ahead; at 10 MB/s 16-18 s
// against 8.0). So once fetches waited (were refused, or still were paused) in
// kWriteAheadWindows windows in a row of kWriteAheadWindow each, in which the bytes came in
// at less than kWriteAheadShare of what the hashing thread hashes per second of its busy time
// (`hash_speed`: the CPU has room for the read-back), the pull writes ahead as on a far link
// for the rest of its run (TransferRunnerOptions::write_ahead). At 100 MB/s a connection (8
// of them: 200-850 MB/s received from one window to the next, the hashing ~1.35 GB/s of its
// busy time) it should not: writing ahead there was slower (1.4-1.5 -> 1.8 s), the two cores
// being busy already; one window alone dipped below the share at times, two in a row did not.
inline constexpr std::chrono::milliseconds kWriteAheadWindow{200};
inline constexpr int kWriteAheadWindows = 2;
inline constexpr double kWriteAheadShare = 0.25;
// rate and hash_speed in bytes per second; hash_speed 0 while not known yet.
inline bool WriteAheadDue(bool waited_in_window, double rate, double hash_speed) {
  return waited_in_window && hash_speed > 0 && rate < kWriteAheadShare * hash_speed;
}

// The windows of that decision, for the control loop (which asks while not writing ahead).
class WriteAheadWatch {
 public:
  explicit WriteAheadWatch(Clock::TimePoint start) : since_(start) {}
  // `now`; bytes received so far; refusals so far and whether fetches wait now; the bytes the
  // hashing thread hashed so far and its busy nanoseconds. True once WriteAheadDue held in
  // kWriteAheadWindows windows in a row. The hashing's speed counts once it hashed 2 MiB.
  bool Observe(Clock::TimePoint now, uint64_t received, uint64_t refusals, bool waiting,
               uint64_t hashed, uint64_t busy_ns) {
    if (now - since_ < kWriteAheadWindow) return false;
    const double seconds = std::chrono::duration<double>(now - since_).count();
    const double rate = static_cast<double>(received - received_) / seconds;
    const double hash_speed =
        hashed >= (2u << 20) && busy_ns > 0
            ? static_cast<double>(hashed) * 1e9 / static_cast<double>(busy_ns)
            : 0;
    streak_ = WriteAheadDue(refusals > refusals_ || waiting, rate, hash_speed) ? streak_ + 1 : 0;
    since_ = now;
    received_ = received;
    refusals_ = refusals;
    return streak_ >= kWriteAheadWindows;
  }

 private:
  Clock::TimePoint since_;
  uint64_t received_ = 0, refusals_ = 0;
  int streak_ = 0;  // windows in a row in which it was due
};

// Staggered sizes (writing ahead: a far link, or a near one capping each connection, where
// every connection runs at its own capped rate). Fetches launched together at one size end
// together, and so do the ones launched after them: the hashed prefix then waits on the one
// connection filling the range at its front while the others' bytes pile up ahead of it,
// and the hashing comes in bursts (throttled 1 GiB, 16
// connections at 50 MB/s: the prefix at 50 MB/s for half a second while 800 MB/s arrived,
// then 300+ MiB read back at the end). So a new fetch is sized to end `want / connections`
// bytes (at one connection's rate) after the running fetch with the most left
// (`longest_left`): fetches end in file order, one every want / connections bytes, and the
// prefix reaches each range about when its last bytes are in. Whole MiB, at least kMinRange,
// at most want; in the steady state every range is `want`.
inline uint64_t Staggered(uint64_t want, uint64_t longest_left, int connections) {
  if (connections < 2) return want;
  const uint64_t gap = want / static_cast<uint64_t>(connections);
  uint64_t size = longest_left + gap;
  size = (size + (1ull << 20) - 1) >> 20 << 20;
  if (size < kMinRange) size = kMinRange;
  return size < want ? size : want;
}

// The next range to fetch from the front of `todo` (a planner chunk, or what is left of one):
// at most `want` bytes, ending on a kSplitAlign boundary where it is cut (so the memory
// window's blocks are filled by one fetch each). A rest shorter than kMinSplitPiece goes with
// it rather than making a fetch of its own.
inline ByteRange NextRange(ByteRange front, uint64_t want) {
  if (front.size() <= want + kMinSplitPiece) return front;
  uint64_t end = (front.begin + want) / kSplitAlign * kSplitAlign;
  if (end <= front.begin) end = front.begin + want;
  return {front.begin, end};
}

}  // namespace modelsync::engine
