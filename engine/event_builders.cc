#include "engine/event_builders.h"

namespace modelsync::engine {

v1::Event BlobVerifiedEvent(const std::string& content_id, uint64_t size, uint64_t transfer_id) {
  v1::Event e;
  auto* bv = e.mutable_blob_verified();
  bv->set_transfer_id(transfer_id);
  bv->set_content_id(content_id);
  bv->set_size(size);
  return e;
}

v1::Event BlobRemovedEvent(const std::string& content_id, const std::string& reason) {
  v1::Event e;
  e.mutable_blob_removed()->set_content_id(content_id);
  e.mutable_blob_removed()->set_reason(reason);
  return e;
}

v1::Event FileMaterializedEvent(const std::string& repo, const std::string& commit,
                                const std::string& path, const std::string& content_id) {
  v1::Event e;
  auto* fm = e.mutable_file_materialized();
  fm->set_repo(repo);
  fm->set_commit(commit);
  fm->set_path(path);
  fm->set_content_id(content_id);
  return e;
}

v1::Event FileRemovedEvent(const std::string& repo, const std::string& commit,
                           const std::string& path) {
  v1::Event e;
  auto* fr = e.mutable_file_removed();
  fr->set_repo(repo);
  fr->set_path(path);
  fr->set_commit(commit);
  return e;
}

v1::Event MarkerWrittenEvent(const std::string& repo, const std::string& model_id) {
  v1::Event e;
  e.mutable_marker_written()->set_repo(repo);
  e.mutable_marker_written()->set_model_id(model_id);
  return e;
}

v1::Event MarkerRemovedEvent(const std::string& repo, const std::string& model_id) {
  v1::Event e;
  e.mutable_marker_removed()->set_repo(repo);
  e.mutable_marker_removed()->set_model_id(model_id);
  return e;
}

v1::Event ModelIdAssignedEvent(const std::string& repo, const std::string& model_id,
                               const std::string& previous) {
  v1::Event e;
  auto* ma = e.mutable_model_id_assigned();
  ma->set_repo(repo);
  ma->set_model_id(model_id);
  ma->set_previous(previous);
  return e;
}

v1::Event SyncFailedEvent(const std::string& repo, const Status& s) {
  v1::Event e;
  auto* sf = e.mutable_sync_failed();
  sf->set_repo(repo);
  sf->set_reason(s.message());
  sf->set_code(static_cast<int>(s.code()));
  return e;
}

}  // namespace modelsync::engine
