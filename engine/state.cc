// The fold: State::Apply. The rules are the contract written in engine/state.h.
#include "engine/state.h"

namespace modelsync::engine {
namespace {

RepoState& RepoOf(State* s, const std::string& repo) {
  RepoState& r = s->repos[repo];
  r.repo = repo;
  return r;
}

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return {f.begin(), f.end()};
}

}  // namespace

void State::Apply(uint64_t seq, const modelsync::v1::Event& event) {
  using E = modelsync::v1::Event;
  last_seq = seq;
  switch (event.kind_case()) {
    case E::kRepoTracked: {
      const auto& e = event.repo_tracked();
      RepoState& r = RepoOf(this, e.repo());
      r.tracked = true;
      r.tracking = e;
      break;
    }
    case E::kRepoUntracked:
      RepoOf(this, event.repo_untracked().repo()).tracked = false;
      break;
    case E::kRevisionResolved: {
      const auto& e = event.revision_resolved();
      RepoState& r = RepoOf(this, e.repo());
      RevisionState& rev = r.revisions[e.commit()];
      rev.commit = e.commit();
      rev.ref = e.ref();
      rev.files.assign(e.manifest().files().begin(), e.manifest().files().end());
      rev.resolved_ms = event.time_ms();
      rev.derived_from = e.derived_from();
      r.last_resolved_ref = e.ref();
      r.last_resolved_commit = e.commit();
      r.last_resolved_ms = event.time_ms();
      break;
    }
    case E::kTransferStarted: {
      const auto& e = event.transfer_started();
      TransferState t;
      t.id = e.transfer_id();
      t.repo = e.repo();
      t.commit = e.commit();
      t.path = e.path();
      t.content_id = e.content_id();
      t.size = e.size();
      t.lfs = e.lfs();
      transfers[t.id] = std::move(t);
      if (next_transfer_id <= e.transfer_id()) next_transfer_id = e.transfer_id() + 1;
      break;
    }
    case E::kRangesCommitted: {
      const auto& e = event.ranges_committed();
      auto it = transfers.find(e.transfer_id());
      if (it == transfers.end()) {
        ++anomalies;
        break;
      }
      for (const auto& r : e.ranges()) {
        if (r.end() > r.begin()) it->second.committed.Add(ByteRange{r.begin(), r.end()});
      }
      break;
    }
    case E::kBlobVerified: {
      const auto& e = event.blob_verified();
      blobs[e.content_id()] = e.size();
      // transfer_id 0: content fetched into memory (small files) or a blob re-hashed in
      // place; there was no partial file.
      if (e.transfer_id() != 0 && transfers.erase(e.transfer_id()) == 0) ++anomalies;
      break;
    }
    case E::kTransferFailed: {
      const auto& e = event.transfer_failed();
      auto it = transfers.find(e.transfer_id());
      if (it == transfers.end()) {
        ++anomalies;
      } else if (e.discarded()) {
        transfers.erase(it);
      } else {
        it->second.status = TransferState::Status::kFailed;
        it->second.failure = e.reason();
      }
      break;
    }
    case E::kFileMaterialized: {
      const auto& e = event.file_materialized();
      RepoOf(this, e.repo()).pending[e.commit()][e.path()] = e.content_id();
      break;
    }
    case E::kFileRemoved: {
      const auto& e = event.file_removed();
      RepoState& r = RepoOf(this, e.repo());
      auto p = r.pending.find(e.commit());
      if (p != r.pending.end()) p->second.erase(e.path());
      if (e.commit().empty() || e.commit() == r.active_commit) r.materialized.erase(e.path());
      break;
    }
    case E::kRevisionActivated: {
      const auto& e = event.revision_activated();
      RepoState& r = RepoOf(this, e.repo());
      auto p = r.pending.find(e.commit());
      if (p != r.pending.end()) {
        r.materialized = std::move(p->second);
        r.pending.erase(p);
      } else if (e.commit() != r.active_commit) {
        r.materialized.clear();
      }
      r.active_commit = e.commit();
      r.active_ref = e.ref();
      r.active_include = Strings(e.include());
      r.active_exclude = Strings(e.exclude());
      r.unloadable = e.unloadable();
      if (!e.model_id().empty()) r.model_id = e.model_id();
      r.last_error.clear();
      r.last_error_code = 0;
      r.last_error_ms = 0;
      break;
    }
    case E::kMarkerWritten: {
      const auto& e = event.marker_written();
      RepoState& r = RepoOf(this, e.repo());
      r.marker = true;
      r.model_id = e.model_id();
      break;
    }
    case E::kMarkerRemoved: {
      const auto& e = event.marker_removed();
      RepoState& r = RepoOf(this, e.repo());
      if (r.model_id.empty() || r.model_id == e.model_id()) {
        r.marker = false;
        r.model_id = e.model_id();
      }
      break;
    }
    case E::kModelIdAssigned: {
      const auto& e = event.model_id_assigned();
      RepoState& r = RepoOf(this, e.repo());
      r.model_id = e.model_id();
      if (r.tracked) r.tracking.set_model_id(e.model_id());
      break;
    }
    case E::kRepoRemoved:
      repos.erase(event.repo_removed().repo());
      break;
    case E::kSyncCompleted: {
      RepoState& r = RepoOf(this, event.sync_completed().repo());
      r.last_error.clear();
      r.last_error_code = 0;
      r.last_error_ms = 0;
      break;
    }
    case E::kFileKept:
      break;
    case E::kBlobRemoved:
      blobs.erase(event.blob_removed().content_id());
      break;
    case E::kManifestContinued: {
      const auto& e = event.manifest_continued();
      auto r = repos.find(e.repo());
      if (r == repos.end() || !r->second.revisions.count(e.commit())) {
        ++anomalies;
        break;
      }
      auto& files = r->second.revisions[e.commit()].files;
      files.insert(files.end(), e.files().begin(), e.files().end());
      break;
    }
    case E::kSyncFailed: {
      const auto& e = event.sync_failed();
      RepoState& r = RepoOf(this, e.repo());
      r.last_error = e.reason();
      r.last_error_code = e.code();
      r.last_error_ms = event.time_ms();
      break;
    }
    case E::KIND_NOT_SET:
      ++anomalies;  // the log refuses unknown kinds before they get here
      break;
  }
}

std::vector<std::string> State::OwnersOf(const std::string& model_id) const {
  std::vector<std::string> out;
  for (const auto& [name, r] : repos)
    if (!model_id.empty() && r.model_id == model_id) out.push_back(name);
  return out;
}

}  // namespace modelsync::engine
