// CompactionPlan: which events log compaction may drop without changing the fold (state.h).
//
// A RangesCommitted event only adds ranges to transfers[id].committed, and only while that
// transfer is live (an unknown id is an anomaly: such events are kept, the anomaly count must
// not change). Once the fold forgets the transfer - BlobVerified with its id, a discarding
// TransferFailed, or a new TransferStarted reusing the id - those ranges no longer influence
// anything, so the events can go. Everything else (TransferStarted, BlobVerified,
// TransferFailed, ranges of live or resumable-failed transfers) stays; the last event of the
// log is never a candidate (a finishing event follows every dropped one).
//
// FileMaterialized and FileRemoved build a repo's `materialized` map (via `pending`); a
// RevisionActivated that replaces the map wholesale (pending files for its commit, or a
// commit other than the active one) makes the events that built the previous map history
// only, so they can go too. The fold's rules for pending/active are mirrored exactly; a
// FileRemoved that touches neither a pending nor the active map is kept.
//
// Feed Observe() every event in log order (from seq 1, or after earlier compactions the
// events that remain); then Take() lists the droppable seqs, ascending. Folding the log
// without them gives the same State (ToSnapshotBytes) as folding all of it, from the start
// or on top of any snapshot taken at or after the finishing events (tests/compaction_test).
// Value type; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proto/events.pb.h"

namespace modelsync::engine {

class CompactionPlan {
 public:
  void Observe(uint64_t seq, const modelsync::v1::Event& event);
  // The droppable seqs so far, ascending (clears them from the plan).
  std::vector<uint64_t> Take();
  uint64_t events() const { return drop_.size(); }
  // Approximate bytes their records take in the log (payload + framing + key + node header).
  uint64_t record_bytes() const { return bytes_; }
  // Range events of transfers still live (kept).
  uint64_t kept_live() const;

 private:
  struct Pending {
    std::vector<uint64_t> seqs;
    uint64_t bytes = 0;
  };
  // The file events behind one repo's maps, mirroring state.cc's fold.
  struct RepoFiles {
    std::string active_commit;
    Pending active;                          // built (or changed) the current `materialized`
    std::map<std::string, Pending> pending;  // commit -> events behind pending[commit]
  };
  void Forget(uint64_t transfer_id);
  void Drop(Pending* p);
  std::map<uint64_t, Pending> live_;  // transfer id -> its range events so far
  std::map<std::string, RepoFiles> repos_;
  std::vector<uint64_t> drop_;
  uint64_t bytes_ = 0;
};

}  // namespace modelsync::engine
