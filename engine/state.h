// State: the projection of the event log that the planner and the commands read.
//
// State is a pure fold: State s; for each (seq, event) in log order: s.Apply(seq, event).
// It is never written except by Apply (and by loading a snapshot of itself), so everything
// in it is derived from the log. Snapshots (state at seq N) bound start-up time; replaying
// the full log and loading snapshot + tail give the same Digest().
//
// Fold rules (the contract other code relies on):
//  - RepoTracked: repos[repo].tracked = true, tracking = the event (replaces any earlier).
//  - RepoUntracked: tracked = false (the repo's other facts stay).
//  - RevisionResolved: revisions[commit] = manifest; last_resolved_* updated.
//  - TransferStarted: transfers[id] = {..., status kActive}; next_transfer_id > id.
//  - RangesCommitted: transfers[id].committed.Add(ranges) (unknown id = ignored, counted in
//    anomalies).
//  - BlobVerified: blobs[content_id] = size; the transfer is erased (its partial is gone).
//  - BlobRemoved: blobs.erase(content_id) (committed before the file is deleted).
//    transfer_id 0 = no partial (a small file fetched into memory, or a blob re-hashed).
//  - TransferFailed: discarded -> the transfer is erased (partial must be deleted);
//    otherwise status kFailed with reason, committed ranges kept for a later resume.
//  - FileMaterialized / FileRemoved: pending[repo][commit] built up; see RevisionActivated.
//  - RevisionActivated: active_commit = commit; materialized = the files recorded for it;
//    marker stays as it was until MarkerWritten/MarkerRemoved.
//    (Details: "the files recorded for it" = pending[repo][commit], which is then dropped; when
//    nothing is pending and the commit is already active, materialized is kept. active_ref,
//    active_include/exclude come from the event; model_id too when the event carries one.)
//  - FileRemoved: erases the path from pending[repo][commit], and from materialized when
//    commit is the active one (or empty).
//  - BlobVerified / TransferFailed for an unknown transfer id count in anomalies too (the
//    blob of a BlobVerified is recorded anyway).
//  - Events naming a repo that is not in repos create its entry (pull does not track).
//  - last_seq = seq after every event.
//  - MarkerWritten: marker = true, model_id = the event's (the repo owns that id).
//  - MarkerRemoved: when it names the repo's model_id (or model_id is empty): marker = false
//    and model_id recorded. A MarkerRemoved of an older id (after an id change) changes nothing
//    but the history.
//  - ModelIdAssigned: model_id = the event's; tracking.model_id too when the repo is tracked
//    (the watch list follows an id change). The marker flag stays: it is about the old id
//    until a MarkerWritten of the new one.
//  - RevisionActivated also sets unloadable (why a complete revision gets no marker).
//  - RepoRemoved: the repo's entry is erased (its model id is free again); its transfers and
//    blobs stay (gc's business). Later events recreate the entry from nothing.
//  - SyncFailed: last_error* set; cleared by the next RevisionActivated or SyncCompleted of
//    that repo.
//  - FileKept: history only (no state).
//  - ManifestContinued: revisions[commit].files += files (an unknown repo or commit counts
//    in anomalies).
//
// Ownership of model ids: OwnerOf(id) is the repo whose model_id is id (one at most when the
// log was written by this version; an older log may hold two, which verify reports).
//
// Not thread-safe; one owner (the engine's control thread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_range.h"
#include "base/status.h"
#include "proto/events.pb.h"

namespace modelsync::engine {

// Bumped whenever the fold rules change: snapshots of another version are ignored (the log
// is replayed from the start instead).
inline constexpr uint32_t kStateVersion = 3;  // 3: RevisionState.derived_from

struct TransferState {
  enum class Status { kActive, kFailed };
  uint64_t id = 0;
  std::string repo, commit, path, content_id;
  uint64_t size = 0;
  bool lfs = false;
  RangeSet committed;  // durable bytes in .modelsync/partial/<id>
  Status status = Status::kActive;
  std::string failure;  // last TransferFailed reason when kFailed
};

struct RevisionState {
  std::string commit;
  std::string ref;  // the ref that resolved to it (last one seen)
  std::vector<modelsync::v1::FileEntry> files;
  int64_t resolved_ms = 0;
  // Set (converter non-empty) when a converter made the revision (engine/gguf_convert.h).
  modelsync::v1::Derivation derived_from;
};

struct RepoState {
  std::string repo;  // "org/name"
  bool tracked = false;
  modelsync::v1::RepoTracked tracking;  // valid when tracked (or last tracking if untracked)

  std::map<std::string, RevisionState> revisions;  // commit -> manifest
  std::string last_resolved_ref, last_resolved_commit;
  int64_t last_resolved_ms = 0;

  std::string active_commit;  // empty = nothing active yet
  std::string active_ref;
  std::vector<std::string> active_include, active_exclude;
  std::map<std::string, std::string> materialized;  // path -> content_id of the active revision
  // Files recorded by FileMaterialized for a commit not yet activated: commit -> path -> id.
  std::map<std::string, std::map<std::string, std::string>> pending;

  std::string model_id;
  bool marker = false;
  // Why the active revision, complete, gets no marker (engine/loadability.h); empty = it is
  // a loadable MLX model (or the log predates the field).
  std::string unloadable;

  std::string last_error;
  int last_error_code = 0;
  int64_t last_error_ms = 0;
};

struct State {
  uint64_t last_seq = 0;  // seq of the last event applied (0 = none)
  std::map<std::string, RepoState> repos;
  std::map<uint64_t, TransferState> transfers;  // live (active or failed-resumable) only
  std::map<std::string, uint64_t> blobs;        // verified content_id -> size
  uint64_t next_transfer_id = 1;
  uint64_t anomalies = 0;  // events that referred to unknown things (logged, not fatal)

  void Apply(uint64_t seq, const modelsync::v1::Event& event);
  // The repos whose model_id is model_id, in name order (empty: the id is free).
  std::vector<std::string> OwnersOf(const std::string& model_id) const;
  // A stable hex digest of everything above (for replay == snapshot+tail tests): sha256 of
  // the canonical snapshot serialization (maps in key order, no protobuf maps).
  std::string Digest() const;

  // Snapshot bytes (a serialized modelsync.v1.StateSnapshot, see proto/snapshot.proto).
  std::string ToSnapshotBytes() const;
  // Loads snapshot bytes into *this (replacing everything). kCorruption when they do not
  // parse; kVersion when written under another kStateVersion (callers then replay instead).
  Status LoadSnapshotBytes(std::string_view bytes);
};

}  // namespace modelsync::engine
