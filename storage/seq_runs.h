// SeqRuns: a set of event sequence numbers as sorted, disjoint runs [first, last]: the record
// of which events compaction removed from the log (meta key "compacted", LOG_FORMAT.md).
//
// Payload encoding (then framed and checksummed like every record, storage/record_format.h):
//   varint  number of runs R
//   R times varint  first - (previous last + 1)   (previous last = 0 before the first run)
//           varint  last - first
// Varints are LEB128 (7 bits a byte, low first, at most 10 bytes). Runs are written merged
// (never adjacent); a decoder accepts adjacent runs and merges them, and rejects anything
// else (a run before the previous one, overflow, trailing bytes, seq 0).
// Value type; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace modelsync::storage {

struct SeqRun {
  uint64_t first = 0, last = 0;  // inclusive
  bool operator==(const SeqRun&) const = default;
};

class SeqRuns {
 public:
  // Adds [first, last] (first >= 1, first <= last), merging with the runs it touches.
  void Add(uint64_t first, uint64_t last);
  void Add(const SeqRuns& other);
  bool Contains(uint64_t seq) const;
  // True when every seq in [first, last] is in the set.
  bool Covers(uint64_t first, uint64_t last) const;
  uint64_t count() const;  // number of seqs
  bool empty() const { return runs_.empty(); }
  const std::vector<SeqRun>& runs() const { return runs_; }

  std::string Encode() const;
  // kCorruption (message says what was wrong) when payload is not a valid encoding.
  static Status Decode(std::string_view payload, SeqRuns* out);

 private:
  std::vector<SeqRun> runs_;  // sorted, disjoint, non-adjacent
};

}  // namespace modelsync::storage
