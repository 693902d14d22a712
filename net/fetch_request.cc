#include "net/fetch_request.h"

#include <cinttypes>
#include <cstdio>

namespace modelsync::net {

FetchRequest::FetchRequest(Loop& loop, uint64_t id, FetchSpec spec, FetchSink* sink)
    : Request(loop, ErrorContext{spec.repo, spec.commit, spec.path, !loop.options.token.empty()}),
      id_(id),
      spec_(std::move(spec)),
      sink_(sink) {
  if (spec_.range.empty()) spec_.range = ByteRange{0, spec_.file_size};
  next_ = spec_.range.begin;
  end_ = spec_.range.end;
}

std::string FetchRequest::FirstUrl() const {
  return loop_.options.endpoint + "/" + spec_.repo + "/resolve/" + spec_.commit + "/" +
         PercentEncode(spec_.path, /*keep_slash=*/true);
}

std::string FetchRequest::RangeHeader() const {
  return "bytes=" + std::to_string(next_) + "-" + std::to_string(end_ - 1);
}

void FetchRequest::OnAttemptStart() {
  attempt_start_ = next_;
}

Status FetchRequest::CheckIdentity(const ResponseHead& head, bool is_redirect) {
  const std::string where = ctx_.Describe();
  if (auto c = head.Get("x-repo-commit"); c && NormalizeEtag(*c) != NormalizeEtag(spec_.commit)) {
    return Status::Integrity("the hub served " + where + " from commit " + c->substr(0, 40) +
                             " instead of " + spec_.commit +
                             ": the revision changed under us; resolve it again");
  }
  if (auto sz = head.Get("x-linked-size"); sz && *sz != std::to_string(spec_.file_size)) {
    return Status::Integrity("the hub says " + where + " is " + sz->substr(0, 20) +
                             " bytes, the listing said " + std::to_string(spec_.file_size) +
                             ": resolve the revision again");
  }
  const std::string expected =
      NormalizeEtag(spec_.lfs_sha256.empty() ? spec_.git_oid : spec_.lfs_sha256);
  auto linked = head.Get("x-linked-etag");
  std::optional<std::string> seen = linked;
  if (!seen && !is_redirect) seen = head.Get("etag");
  if (!seen) return Status::Ok();  // nothing claimed here; the caller decides if that is enough
  if (expected.empty()) return Status::Ok();  // the caller did not say what to expect
  if (NormalizeEtag(*seen) != expected) {
    return Status::Integrity("the hub's ETag for " + where + " is " +
                             NormalizeEtag(*seen).substr(0, 64) + ", the listing said " + expected +
                             ": the file changed; resolve the revision again");
  }
  return Status::Ok();
}

Status FetchRequest::CheckRedirect(const ResponseHead& head, bool from_hub) {
  if (!from_hub) return Status::Ok();  // a CDN hop: only the hub's word counts
  return CheckIdentity(head, /*is_redirect=*/true);
}

namespace {
// "bytes a-b/total" -> true with the three numbers.
bool ParseContentRange(const std::string& v, uint64_t* a, uint64_t* b, uint64_t* total) {
  char tail = 0;
  return std::sscanf(v.c_str(), "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64 "%c", a, b, total,
                     &tail) == 3;
}
}  // namespace

BodyUse FetchRequest::OnSuccessHead(const ResponseHead& head, bool from_hub, Status* fail) {
  const std::string where = ctx_.Describe();
  if (from_hub) {
    Status s = CheckIdentity(head, /*is_redirect=*/false);
    if (!s.ok()) {
      *fail = s;
      return BodyUse::kAbort;
    }
  }
  // No ETag / X-Linked-Etag at all (a proxy that strips them) proves nothing either way:
  // the bytes are taken and the file's hash against the listing's git sha1 / sha256 decides,
  // as for every file. A different ETag (CheckIdentity above) is still refused at once.
  if (head.status != 206) {
    // Transient: a CDN edge may answer one request from a whole-file cache entry; the
    // retry (with backoff, up to max_attempts) asks again. A server that always does it
    // fails with this message once the attempts are spent.
    *fail = Status::Transient("the server answered the range request for " + where + " with HTTP " +
                              std::to_string(head.status) +
                              " instead of 206 (it ignores Range): nothing was used; if this "
                              "persists, a proxy in front of the hub strips Range headers");
    return BodyUse::kAbort;
  }
  uint64_t a = 0, b = 0, total = 0;
  auto cr = head.Get("content-range");
  if (!cr || !ParseContentRange(*cr, &a, &b, &total) || a != next_ || b + 1 != end_) {
    *fail = Status::Transient("wrong Content-Range '" + cr.value_or("").substr(0, 80) + "' for " +
                              where + " (asked " + RangeHeader() + "): nothing was used; if this "
                              "persists, a proxy in front of the hub rewrites ranges");
    return BodyUse::kAbort;
  }
  if (total != spec_.file_size) {
    *fail = Status::Integrity("the server says " + where + " is " + std::to_string(total) +
                              " bytes, the listing said " + std::to_string(spec_.file_size) +
                              ": resolve the revision again");
    return BodyUse::kAbort;
  }
  return BodyUse::kDeliver;
}

Status FetchRequest::OnData(const char* data, size_t n) {
  if (n > end_ - next_) {
    return Status::Permanent("the server sent more than the requested range of " + ctx_.Describe());
  }
  Status s = sink_->OnData(next_, data, n);
  if (!s.ok()) return s;
  next_ += n;
  loop_.body_bytes += n;
  return Status::Ok();
}

Status FetchRequest::OnSuccessEnd(const Exchange&) {
  if (next_ == end_) return Status::Ok();
  return Status::Transient("the transfer of " + ctx_.Describe() + " ended at byte " +
                           std::to_string(next_) + " of " + std::to_string(end_) +
                           ": check the network and retry");
}

void FetchRequest::OnFinish(Status status) { sink_->OnDone(std::move(status)); }

}  // namespace modelsync::net
