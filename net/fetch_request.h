// FetchRequest: a ranged fetch of one file into a FetchSink (internal to net/).
//
// Before any byte reaches the sink the response must prove it is the asked-for bytes:
//   - on the hub's origin (the 302/307 and a direct 2xx): X-Repo-Commit (if sent) equals
//     the commit; X-Linked-Etag, else ETag, equals lfs_sha256 (LFS) or git_oid (regular),
//     compared after dropping W/ and quotes; X-Linked-Size (if sent) equals file_size;
//   - a 2xx off the hub's origin (the CDN) is only accepted after the hub confirmed the
//     identity on the redirect that led there (its own ETag is not the sha256);
//   - the 2xx is a 206 whose Content-Range is exactly "bytes next-last/file_size".
// A 200 to the range request, a wrong Content-Range: kPermanent, nothing delivered.
// An identity mismatch: kIntegrity. A transfer that ends early resumes from the next byte.
//
// The CDN URL the hub hands a file over to (after checking the hub's identity claims on
// that redirect) is kept in Loop::cdn_links and used directly for the file's later ranges
// and resumptions, until 60 s before it expires (its Expires= or X-Amz-Date + X-Amz-Expires
// query; 5 minutes when it says nothing): one hub round trip per file instead of one per
// range. A kept URL the CDN refuses (any 4xx: expired, revoked) is dropped and the attempt
// starts again at the hub, once.
#pragma once

#include "net/hub.h"
#include "net/request.h"

namespace modelsync::net {

class FetchRequest final : public Request {
 public:
  FetchRequest(Loop& loop, uint64_t id, FetchSpec spec, FetchSink* sink);
  uint64_t id() const { return id_; }

 private:
  std::string FirstUrl() const override;
  std::string RangeHeader() const override;
  uint64_t RangeBytes() const override { return end_ - next_; }
  Status CheckRedirect(const ResponseHead& head, bool from_hub) override;
  BodyUse OnSuccessHead(const ResponseHead& head, bool from_hub, Status* fail) override;
  Status OnData(const char* data, size_t n) override;
  Status PlaceFor(size_t want, char** data, size_t* size) override;
  Status OnPlaced(size_t n) override;
  bool Ready() override { return sink_->Ready(next_); }
  Status OnSuccessEnd(const Answer& answer) override;
  bool MadeProgress() const override { return next_ > attempt_start_; }
  void OnAttemptStart() override;
  bool FollowRedirect(const ResponseHead& head, const std::string& next_url) override;
  bool FirstUrlIsHub() const override { return first_url_ == HubUrl(); }
  bool RestartAfter(const ResponseHead& head) override;
  std::string HubUrl() const;
  void OnFinish(Status status) override;
  Status CheckIdentity(const ResponseHead& head, bool is_redirect);

  uint64_t id_;
  FetchSpec spec_;
  FetchSink* sink_;
  uint64_t next_;  // next offset to deliver
  uint64_t end_;   // exclusive
  uint64_t attempt_start_ = 0;
  std::string key_;        // Loop::cdn_links key
  std::string first_url_;  // this attempt's first URL: the hub's, or a kept CDN link
  bool restarted_ = false; // a kept link was refused once already
  bool handed_over_ = false;  // this attempt went from the hub to a CDN (link kept)
};

}  // namespace modelsync::net
