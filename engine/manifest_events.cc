#include "engine/manifest_events.h"

namespace modelsync::engine {
namespace {

// scheme://user:secret@host/... -> scheme://host/...: credentials are never stored in the log.
std::string WithoutUserinfo(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host = scheme + 3;
  size_t end = url.find_first_of("/?#", host);
  size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < host) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

}  // namespace

std::vector<v1::Event> ResolvedEvents(const std::string& repo, const std::string& ref,
                                      const std::string& commit, const std::string& endpoint,
                                      const std::vector<v1::FileEntry>& files,
                                      size_t max_part_bytes) {
  std::vector<v1::Event> out;
  v1::Event first;
  auto* rr = first.mutable_revision_resolved();
  rr->set_repo(repo);
  rr->set_ref(ref);
  rr->set_commit(commit);
  rr->set_endpoint(WithoutUserinfo(endpoint));
  out.push_back(std::move(first));
  v1::Manifest* part = rr->mutable_manifest();
  auto* cont_files = static_cast<google::protobuf::RepeatedPtrField<v1::FileEntry>*>(nullptr);
  cont_files = part->mutable_files();
  size_t bytes = 0;
  for (const auto& f : files) {
    size_t n = f.ByteSizeLong() + 8;
    if (bytes > 0 && bytes + n > max_part_bytes) {
      v1::Event more;
      auto* mc = more.mutable_manifest_continued();
      mc->set_repo(repo);
      mc->set_commit(commit);
      out.push_back(std::move(more));
      cont_files = out.back().mutable_manifest_continued()->mutable_files();
      bytes = 0;
    }
    *cont_files->Add() = f;
    bytes += n;
  }
  return out;
}

}  // namespace modelsync::engine
