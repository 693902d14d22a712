#include "base/byte_range.h"

#include <algorithm>

namespace modelsync {

std::string ToString(const ByteRange& r) {
  return "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ")";
}

void RangeSet::Add(ByteRange r) {
  if (r.empty()) return;
  // First range whose end >= r.begin (touching or overlapping).
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), r.begin,
                             [](const ByteRange& x, uint64_t b) { return x.end < b; });
  auto last = it;
  while (last != ranges_.end() && last->begin <= r.end) {
    r.begin = std::min(r.begin, last->begin);
    r.end = std::max(r.end, last->end);
    ++last;
  }
  it = ranges_.erase(it, last);
  ranges_.insert(it, r);
}

void RangeSet::Add(const RangeSet& other) {
  for (const auto& r : other.ranges_) Add(r);
}

bool RangeSet::Contains(ByteRange r) const {
  if (r.empty()) return true;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), r.begin,
                             [](uint64_t b, const ByteRange& x) { return b < x.begin; });
  if (it == ranges_.begin()) return false;
  --it;
  return it->begin <= r.begin && r.end <= it->end;
}

uint64_t RangeSet::CoveredBytes() const {
  uint64_t n = 0;
  for (const auto& r : ranges_) n += r.size();
  return n;
}

std::vector<ByteRange> RangeSet::Missing(uint64_t size) const {
  std::vector<ByteRange> out;
  uint64_t pos = 0;
  for (const auto& r : ranges_) {
    if (r.begin >= size) break;
    if (r.begin > pos) out.push_back({pos, r.begin});
    pos = std::max(pos, r.end);
  }
  if (pos < size) out.push_back({pos, size});
  return out;
}

bool RangeSet::Overlaps(ByteRange r) const {
  if (r.empty()) return false;
  // The first range ending after r.begin overlaps r when it begins before r.end.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), r.begin,
                             [](uint64_t b, const ByteRange& x) { return b < x.end; });
  return it != ranges_.end() && it->begin < r.end;
}

uint64_t RangeSet::RunEnd(uint64_t pos) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), pos,
                             [](uint64_t b, const ByteRange& x) { return b < x.begin; });
  if (it == ranges_.begin()) return pos;
  --it;
  return pos < it->end ? it->end : pos;
}

RangeSet RangeSet::Minus(const RangeSet& other) const {
  RangeSet out;
  for (const ByteRange& r : ranges_) {
    uint64_t p = r.begin;
    for (const ByteRange& f : other.ranges_) {
      if (f.end <= p || f.begin >= r.end) continue;
      if (f.begin > p) out.ranges_.push_back({p, f.begin});
      p = std::max(p, f.end);
    }
    if (p < r.end) out.ranges_.push_back({p, r.end});
  }
  return out;  // sorted, disjoint and non-adjacent: pieces of disjoint ranges, cut at gaps
}

RangeSet RangeSet::Uncovered(ByteRange r) const {
  RangeSet whole;
  whole.Add(r);
  return whole.Minus(*this);
}

uint64_t RangeSet::PrefixEnd() const {
  if (ranges_.empty() || ranges_.front().begin != 0) return 0;
  return ranges_.front().end;
}

}  // namespace modelsync
