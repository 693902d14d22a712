#include "storage/seq_runs.h"

#include <algorithm>

namespace modelsync::storage {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && b > 1) return false;  // more than 64 bits
    *v |= uint64_t{b & 0x7Fu} << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace

void SeqRuns::Add(uint64_t first, uint64_t last) {
  if (first == 0 || first > last) return;
  // The first run that ends at or after first - 1 (could touch or overlap).
  auto it = std::lower_bound(runs_.begin(), runs_.end(), first,
                             [](const SeqRun& r, uint64_t f) { return r.last < f - 1; });
  auto end = it;
  while (end != runs_.end() && end->first - 1 <= last) {
    first = std::min(first, end->first);
    last = std::max(last, end->last);
    ++end;
  }
  it = runs_.erase(it, end);
  runs_.insert(it, SeqRun{first, last});
}

void SeqRuns::Add(const SeqRuns& other) {
  for (const auto& r : other.runs_) Add(r.first, r.last);
}

bool SeqRuns::Contains(uint64_t seq) const { return Covers(seq, seq); }

bool SeqRuns::Covers(uint64_t first, uint64_t last) const {
  auto it = std::lower_bound(runs_.begin(), runs_.end(), first,
                             [](const SeqRun& r, uint64_t f) { return r.last < f; });
  return it != runs_.end() && it->first <= first && last <= it->last;
}

uint64_t SeqRuns::count() const {
  uint64_t n = 0;
  for (const auto& r : runs_) n += r.last - r.first + 1;
  return n;
}

std::string SeqRuns::Encode() const {
  std::string out;
  PutVarint(runs_.size(), &out);
  uint64_t prev = 0;
  for (const auto& r : runs_) {
    PutVarint(r.first - prev - 1, &out);
    PutVarint(r.last - r.first, &out);
    prev = r.last;
  }
  return out;
}

Status SeqRuns::Decode(std::string_view in, SeqRuns* out) {
  SeqRuns s;
  uint64_t n = 0;
  if (!GetVarint(&in, &n)) return Status::Corruption("the run count is truncated");
  if (n > in.size() / 2) return Status::Corruption("it claims more runs than it has bytes");
  uint64_t prev = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t gap = 0, len = 0;
    if (!GetVarint(&in, &gap) || !GetVarint(&in, &len))
      return Status::Corruption("run " + std::to_string(i + 1) + " is truncated");
    if (gap >= UINT64_MAX - prev || len > UINT64_MAX - (prev + 1 + gap))
      return Status::Corruption("run " + std::to_string(i + 1) + " overflows");
    uint64_t first = prev + 1 + gap, last = first + len;
    if (!s.runs_.empty() && s.runs_.back().last + 1 == first)
      s.runs_.back().last = last;
    else
      s.runs_.push_back({first, last});
    prev = last;
  }
  if (!in.empty()) return Status::Corruption(std::to_string(in.size()) + " trailing bytes");
  *out = std::move(s);
  return Status::Ok();
}

}  // namespace modelsync::storage
