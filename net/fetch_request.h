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
  Status CheckRedirect(const ResponseHead& head, bool from_hub) override;
  BodyUse OnSuccessHead(const ResponseHead& head, bool from_hub, Status* fail) override;
  Status OnData(const char* data, size_t n) override;
  Status OnSuccessEnd(const Exchange& ex) override;
  bool MadeProgress() const override { return next_ > attempt_start_; }
  void OnAttemptStart() override;
  void OnFinish(Status status) override;
  Status CheckIdentity(const ResponseHead& head, bool is_redirect);

  uint64_t id_;
  FetchSpec spec_;
  FetchSink* sink_;
  uint64_t next_;  // next offset to deliver
  uint64_t end_;   // exclusive
  uint64_t attempt_start_ = 0;
};

}  // namespace modelsync::net
