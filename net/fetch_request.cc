#include "net/fetch_request.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace modelsync::net {

FetchRequest::FetchRequest(Loop& loop, uint64_t id, FetchSpec spec, FetchSink* sink)
    : Request(loop, ErrorContext{spec.repo, spec.commit, spec.path, !loop.options.token.empty()}),
      id_(id),
      spec_(std::move(spec)),
      sink_(sink) {
  if (spec_.range.empty()) spec_.range = ByteRange{0, spec_.file_size};
  next_ = spec_.range.begin;
  end_ = spec_.range.end;
  key_ = spec_.repo + "\n" + spec_.commit + "\n" + spec_.path;
}

namespace {

constexpr int64_t kCdnLinkMargin = 60'000;            // ms before expiry a link is dropped
constexpr int64_t kCdnLinkDefaultLife = 5 * 60'000;   // a link that states no expiry

// The query parameter `name` of url ("" when absent).
std::string QueryParam(const std::string& url, const std::string& name) {
  size_t q = url.find('?');
  if (q == std::string::npos) return "";
  size_t at = q + 1;
  while (at < url.size()) {
    size_t end = url.find('&', at);
    if (end == std::string::npos) end = url.size();
    size_t eq = url.find('=', at);
    if (eq != std::string::npos && eq < end && url.compare(at, eq - at, name) == 0)
      return url.substr(eq + 1, end - eq - 1);
    at = end + 1;
  }
  return "";
}

bool AllDigits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}

// When a signed URL stops working (wall ms): CloudFront's Expires (Unix seconds), S3's
// X-Amz-Date (YYYYMMDDTHHMMSSZ) + X-Amz-Expires (seconds); else now + 5 minutes.
int64_t ExpiryOf(const std::string& url, int64_t now_ms) {
  if (std::string e = QueryParam(url, "Expires"); AllDigits(e)) return std::stoll(e) * 1000;
  std::string date = QueryParam(url, "X-Amz-Date"), life = QueryParam(url, "X-Amz-Expires");
  if (date.size() == 16 && date[8] == 'T' && date[15] == 'Z' && AllDigits(life)) {
    std::tm tm{};
    if (std::sscanf(date.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6) {
      tm.tm_year -= 1900;
      tm.tm_mon -= 1;
      return (static_cast<int64_t>(timegm(&tm)) + std::stoll(life)) * 1000;
    }
  }
  return now_ms + kCdnLinkDefaultLife;
}

}  // namespace

std::string FetchRequest::HubUrl() const {
  return loop_.options.endpoint + "/" + spec_.repo + "/resolve/" + spec_.commit + "/" +
         PercentEncode(spec_.path, /*keep_slash=*/true);
}

std::string FetchRequest::FirstUrl() const { return first_url_.empty() ? HubUrl() : first_url_; }

bool FetchRequest::FollowRedirect(const ResponseHead& head, const std::string& next_url) {
  // The hub handing the file over to a CDN (another origin, or a Location carrying the
  // X-Linked-* claims it just made and CheckRedirect accepted): keep the link.
  if (first_url_ == HubUrl() && !handed_over_ &&
      (!IsHubOrigin(next_url) || head.Get("x-linked-etag"))) {
    handed_over_ = true;  // later hops are the CDN's own
    const int64_t now = loop_.clock.WallMs();
    loop_.cdn_links[key_] = Loop::CdnLink{next_url, ExpiryOf(next_url, now)};
  }
  return true;
}

bool FetchRequest::RestartAfter(const ResponseHead& head) {
  if (first_url_ == HubUrl() || restarted_ || head.status < 400 || head.status >= 500) return false;
  loop_.cdn_links.erase(key_);  // expired or revoked: ask the hub again, once
  restarted_ = true;
  return true;
}

std::string FetchRequest::RangeHeader() const {
  return "bytes=" + std::to_string(next_) + "-" + std::to_string(end_ - 1);
}

void FetchRequest::OnAttemptStart() {
  attempt_start_ = next_;
  first_url_ = HubUrl();
  handed_over_ = false;
  auto it = loop_.cdn_links.find(key_);
  if (it == loop_.cdn_links.end()) return;
  if (it->second.expires_ms - kCdnLinkMargin > loop_.clock.WallMs()) first_url_ = it->second.url;
  else loop_.cdn_links.erase(it);
}

Status FetchRequest::CheckIdentity(const ResponseHead& head, bool is_redirect) {
  // Named only in an error (every response of every fetch comes here).
  auto where = [&] { return ctx_.Describe(); };
  if (auto c = head.Get("x-repo-commit"); c && NormalizeEtag(*c) != NormalizeEtag(spec_.commit)) {
    return Status::Integrity("the hub served " + where() + " from commit " + c->substr(0, 40) +
                             " instead of " + spec_.commit +
                             ": the revision changed under us; resolve it again");
  }
  if (auto sz = head.Get("x-linked-size"); sz && *sz != std::to_string(spec_.file_size)) {
    return Status::Integrity("the hub says " + where() + " is " + sz->substr(0, 20) +
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
    return Status::Integrity("the hub's ETag for " + where() + " is " +
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
  auto where = [&] { return ctx_.Describe(); };  // named only in an error
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
    *fail = Status::Transient("the server answered the range request for " + where() +
                              " with HTTP " + std::to_string(head.status) +
                              " instead of 206 (it ignores Range): nothing was used; if this "
                              "persists, a proxy in front of the hub strips Range headers");
    return BodyUse::kAbort;
  }
  uint64_t a = 0, b = 0, total = 0;
  auto cr = head.Get("content-range");
  if (!cr || !ParseContentRange(*cr, &a, &b, &total) || a != next_ || b + 1 != end_) {
    *fail = Status::Transient("wrong Content-Range '" + cr.value_or("").substr(0, 80) + "' for " +
                              where() + " (asked " + RangeHeader() + "): nothing was used; if this "
                              "persists, a proxy in front of the hub rewrites ranges");
    return BodyUse::kAbort;
  }
  if (total != spec_.file_size) {
    *fail = Status::Integrity("the server says " + where() + " is " + std::to_string(total) +
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

Status FetchRequest::PlaceFor(size_t want, char** data, size_t* size) {
  return sink_->Space(next_, static_cast<size_t>(std::min<uint64_t>(want, end_ - next_)), data,
                      size);
}

Status FetchRequest::OnPlaced(size_t n) {
  Status s = sink_->Placed(next_, n);
  if (!s.ok()) return s;
  next_ += n;
  loop_.body_bytes += n;
  return Status::Ok();
}

Status FetchRequest::OnSuccessEnd(const Answer&) {
  if (next_ == end_) return Status::Ok();
  return Status::Transient("the transfer of " + ctx_.Describe() + " ended at byte " +
                           std::to_string(next_) + " of " + std::to_string(end_) +
                           ": check the network and retry");
}

void FetchRequest::OnFinish(Status status) { sink_->OnDone(std::move(status)); }

}  // namespace modelsync::net
