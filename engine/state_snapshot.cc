// State <-> modelsync.v1.StateSnapshot, and the digest over its canonical bytes.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "base/hash.h"
#include "engine/state.h"
#include "proto/snapshot.pb.h"

namespace modelsync::engine {
namespace {

using PathMap = std::map<std::string, std::string>;

void PutPaths(const PathMap& m, google::protobuf::RepeatedPtrField<v1::PathContent>* out) {
  for (const auto& [path, id] : m) {
    auto* pc = out->Add();
    pc->set_path(path);
    pc->set_content_id(id);
  }
}

PathMap GetPaths(const google::protobuf::RepeatedPtrField<v1::PathContent>& in) {
  PathMap m;
  for (const auto& pc : in) m[pc.path()] = pc.content_id();
  return m;
}

v1::StateSnapshot ToProto(const State& s) {
  v1::StateSnapshot p;
  p.set_state_version(kStateVersion);
  p.set_last_seq(s.last_seq);
  p.set_next_transfer_id(s.next_transfer_id);
  p.set_anomalies(s.anomalies);
  for (const auto& [name, r] : s.repos) {
    auto* rp = p.add_repos();
    rp->set_repo(r.repo);
    rp->set_tracked(r.tracked);
    *rp->mutable_tracking() = r.tracking;
    for (const auto& [commit, rev] : r.revisions) {
      auto* vp = rp->add_revisions();
      vp->set_commit(rev.commit);
      vp->set_ref(rev.ref);
      for (const auto& f : rev.files) *vp->add_files() = f;
      vp->set_resolved_ms(rev.resolved_ms);
      if (!rev.derived_from.converter().empty()) *vp->mutable_derived_from() = rev.derived_from;
    }
    rp->set_last_resolved_ref(r.last_resolved_ref);
    rp->set_last_resolved_commit(r.last_resolved_commit);
    rp->set_last_resolved_ms(r.last_resolved_ms);
    rp->set_active_commit(r.active_commit);
    rp->set_active_ref(r.active_ref);
    for (const auto& g : r.active_include) rp->add_active_include(g);
    for (const auto& g : r.active_exclude) rp->add_active_exclude(g);
    PutPaths(r.materialized, rp->mutable_materialized());
    for (const auto& [commit, files] : r.pending) {
      auto* pp = rp->add_pending();
      pp->set_commit(commit);
      PutPaths(files, pp->mutable_files());
    }
    rp->set_model_id(r.model_id);
    rp->set_marker(r.marker);
    rp->set_last_error(r.last_error);
    rp->set_last_error_code(r.last_error_code);
    rp->set_last_error_ms(r.last_error_ms);
    rp->set_unloadable(r.unloadable);
  }
  for (const auto& [id, t] : s.transfers) {
    auto* tp = p.add_transfers();
    tp->set_id(t.id);
    tp->set_repo(t.repo);
    tp->set_commit(t.commit);
    tp->set_path(t.path);
    tp->set_content_id(t.content_id);
    tp->set_size(t.size);
    tp->set_lfs(t.lfs);
    for (const auto& r : t.committed.ranges()) {
      auto* br = tp->add_committed();
      br->set_begin(r.begin);
      br->set_end(r.end);
    }
    tp->set_failed(t.status == TransferState::Status::kFailed);
    tp->set_failure(t.failure);
  }
  for (const auto& [id, size] : s.blobs) {
    auto* bp = p.add_blobs();
    bp->set_content_id(id);
    bp->set_size(size);
  }
  return p;
}

std::string Canonical(const v1::StateSnapshot& p) {
  std::string out;
  google::protobuf::io::StringOutputStream sos(&out);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  p.SerializeToCodedStream(&cos);
  cos.Trim();
  return out;
}

}  // namespace

std::string State::ToSnapshotBytes() const {
  v1::StateSnapshot p = ToProto(*this);
  std::string out = Canonical(p);
  return out;
}

std::string State::Digest() const { return Sha256Hex(ToSnapshotBytes()); }

Status State::LoadSnapshotBytes(std::string_view bytes) {
  v1::StateSnapshot p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::Corruption("the state snapshot does not parse");
  if (p.state_version() != kStateVersion)
    return Status::Version("the state snapshot has version " + std::to_string(p.state_version()) +
                           ", this modelsync folds version " + std::to_string(kStateVersion));
  State s;
  s.last_seq = p.last_seq();
  s.next_transfer_id = p.next_transfer_id();
  s.anomalies = p.anomalies();
  for (const auto& rp : p.repos()) {
    RepoState& r = s.repos[rp.repo()];
    r.repo = rp.repo();
    r.tracked = rp.tracked();
    r.tracking = rp.tracking();
    for (const auto& vp : rp.revisions()) {
      RevisionState& rev = r.revisions[vp.commit()];
      rev.commit = vp.commit();
      rev.ref = vp.ref();
      rev.files.assign(vp.files().begin(), vp.files().end());
      rev.resolved_ms = vp.resolved_ms();
      rev.derived_from = vp.derived_from();
    }
    r.last_resolved_ref = rp.last_resolved_ref();
    r.last_resolved_commit = rp.last_resolved_commit();
    r.last_resolved_ms = rp.last_resolved_ms();
    r.active_commit = rp.active_commit();
    r.active_ref = rp.active_ref();
    r.active_include.assign(rp.active_include().begin(), rp.active_include().end());
    r.active_exclude.assign(rp.active_exclude().begin(), rp.active_exclude().end());
    r.materialized = GetPaths(rp.materialized());
    for (const auto& pp : rp.pending()) r.pending[pp.commit()] = GetPaths(pp.files());
    r.model_id = rp.model_id();
    r.marker = rp.marker();
    r.last_error = rp.last_error();
    r.last_error_code = rp.last_error_code();
    r.last_error_ms = rp.last_error_ms();
    r.unloadable = rp.unloadable();
  }
  for (const auto& tp : p.transfers()) {
    TransferState& t = s.transfers[tp.id()];
    t.id = tp.id();
    t.repo = tp.repo();
    t.commit = tp.commit();
    t.path = tp.path();
    t.content_id = tp.content_id();
    t.size = tp.size();
    t.lfs = tp.lfs();
    for (const auto& br : tp.committed()) t.committed.Add(ByteRange{br.begin(), br.end()});
    t.status = tp.failed() ? TransferState::Status::kFailed : TransferState::Status::kActive;
    t.failure = tp.failure();
  }
  for (const auto& bp : p.blobs()) s.blobs[bp.content_id()] = bp.size();
  *this = std::move(s);
  return Status::Ok();
}

}  // namespace modelsync::engine
