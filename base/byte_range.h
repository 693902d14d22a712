// Byte ranges of a file: [begin, end), end exclusive.
//
// RangeSet keeps a sorted set of disjoint, non-adjacent ranges (adjacent or overlapping
// inserts merge). It answers what is covered and what is still missing in [0, size).
// Values; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace modelsync {

struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive
  uint64_t size() const { return end > begin ? end - begin : 0; }
  bool empty() const { return end <= begin; }
  bool operator==(const ByteRange&) const = default;
};

std::string ToString(const ByteRange& r);  // "[begin, end)"

class RangeSet {
 public:
  RangeSet() = default;
  void Add(ByteRange r);
  void Add(const RangeSet& other);
  bool Contains(ByteRange r) const;
  uint64_t CoveredBytes() const;
  // The gaps in [0, size), in order.
  std::vector<ByteRange> Missing(uint64_t size) const;
  // Length of the covered prefix starting at 0.
  uint64_t PrefixEnd() const;
  // Whether any byte of r is covered.
  bool Overlaps(ByteRange r) const;
  // The end of the covered run that holds byte pos; pos itself when pos is not covered.
  uint64_t RunEnd(uint64_t pos) const;
  // The bytes of this set that `other` does not cover.
  RangeSet Minus(const RangeSet& other) const;
  // The bytes of r that this set does not cover.
  RangeSet Uncovered(ByteRange r) const;
  const std::vector<ByteRange>& ranges() const { return ranges_; }
  bool empty() const { return ranges_.empty(); }
  void Clear() { ranges_.clear(); }
  bool operator==(const RangeSet&) const = default;

 private:
  std::vector<ByteRange> ranges_;
};

}  // namespace modelsync
