#include "engine/state_compact.h"

#include <algorithm>

namespace modelsync::engine {

void CompactionPlan::Forget(uint64_t transfer_id) {
  auto it = live_.find(transfer_id);
  if (it == live_.end()) return;
  drop_.insert(drop_.end(), it->second.seqs.begin(), it->second.seqs.end());
  bytes_ += it->second.bytes;
  live_.erase(it);
}

void CompactionPlan::Observe(uint64_t seq, const modelsync::v1::Event& event) {
  using E = modelsync::v1::Event;
  switch (event.kind_case()) {
    case E::kTransferStarted: {
      uint64_t id = event.transfer_started().transfer_id();
      Forget(id);  // the fold replaces transfers[id]: earlier ranges no longer count
      live_[id];
      break;
    }
    case E::kRangesCommitted: {
      auto it = live_.find(event.ranges_committed().transfer_id());
      if (it == live_.end()) break;  // an anomaly for the fold: keep it
      it->second.seqs.push_back(seq);
      // Payload + record header (5) + key (8) + LMDB node header (8).
      it->second.bytes += event.ByteSizeLong() + 21;
      break;
    }
    case E::kBlobVerified:
      if (event.blob_verified().transfer_id() != 0) Forget(event.blob_verified().transfer_id());
      break;
    case E::kTransferFailed:
      if (event.transfer_failed().discarded()) Forget(event.transfer_failed().transfer_id());
      break;
    default:
      break;
  }
}

std::vector<uint64_t> CompactionPlan::Take() {
  std::vector<uint64_t> out = std::move(drop_);
  drop_.clear();
  bytes_ = 0;
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t CompactionPlan::kept_live() const {
  uint64_t n = 0;
  for (const auto& [id, p] : live_) n += p.seqs.size();
  return n;
}

}  // namespace modelsync::engine
