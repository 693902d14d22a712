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

void CompactionPlan::Drop(Pending* p) {
  drop_.insert(drop_.end(), p->seqs.begin(), p->seqs.end());
  bytes_ += p->bytes;
  *p = Pending{};
}

void CompactionPlan::Observe(uint64_t seq, const modelsync::v1::Event& event) {
  using E = modelsync::v1::Event;
  // Payload + record header (5) + key (8) + LMDB node header (8).
  const uint64_t record_bytes = event.ByteSizeLong() + 21;
  switch (event.kind_case()) {
    case E::kFileMaterialized: {
      const auto& e = event.file_materialized();
      Pending& p = repos_[e.repo()].pending[e.commit()];
      p.seqs.push_back(seq);
      p.bytes += record_bytes;
      break;
    }
    case E::kFileRemoved: {
      const auto& e = event.file_removed();
      RepoFiles& r = repos_[e.repo()];
      auto pend = r.pending.find(e.commit());
      // Attributed to the map it changes that lives longest: pending[commit] (it becomes the
      // next active map) before the active one; touching neither, it stays.
      Pending* owner = pend != r.pending.end()                                 ? &pend->second
                       : (e.commit().empty() || e.commit() == r.active_commit) ? &r.active
                                                                               : nullptr;
      if (owner) {
        owner->seqs.push_back(seq);
        owner->bytes += record_bytes;
      }
      break;
    }
    case E::kRevisionActivated: {
      const auto& e = event.revision_activated();
      RepoFiles& r = repos_[e.repo()];
      auto pend = r.pending.find(e.commit());
      if (pend != r.pending.end()) {
        Drop(&r.active);  // materialized = pending[commit]: the old map is gone
        r.active = std::move(pend->second);
        r.pending.erase(pend);
      } else if (e.commit() != r.active_commit) {
        Drop(&r.active);  // materialized.clear()
      }
      r.active_commit = e.commit();
      break;
    }
    case E::kRepoRemoved: {
      // The fold erases the repo: every file event it had is dead.
      auto it = repos_.find(event.repo_removed().repo());
      if (it == repos_.end()) break;
      Drop(&it->second.active);
      for (auto& [commit, p] : it->second.pending) Drop(&p);
      repos_.erase(it);
      break;
    }
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
      it->second.bytes += record_bytes;
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
