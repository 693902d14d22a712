// ApiRequest: a GET of a hub JSON endpoint, its body collected (capped) for the caller
// (internal to net/). Only a 200 is a success.
#pragma once

#include <functional>

#include "net/hub.h"
#include "net/request.h"

namespace modelsync::net {

struct ApiResponse {
  std::string url;  // the URL that answered (after redirects)
  ResponseHead head;
  std::string body;
};

class ApiRequest final : public Request {
 public:
  static constexpr size_t kMaxBody = 64u << 20;
  using Done = std::function<void(Result<ApiResponse>)>;
  ApiRequest(Loop& loop, ErrorContext ctx, std::string url, Done done);

 private:
  std::string FirstUrl() const override { return url_; }
  bool accept_json() const override { return true; }
  size_t collect_cap() const override { return kMaxBody; }
  BodyUse OnSuccessHead(const ResponseHead& head, bool from_hub, Status* fail) override;
  Status OnSuccessEnd(const Answer& answer) override;
  void OnFinish(Status status) override;

  std::string url_;
  Done done_;
  std::optional<ApiResponse> response_;
};

// HEAD of a resolve URL: file metadata (see Hub::FileInfo).
class HeadRequest final : public Request {
 public:
  using Done = std::function<void(Result<FileMetadata>)>;
  HeadRequest(Loop& loop, ErrorContext ctx, std::string url, Done done);

 private:
  std::string FirstUrl() const override { return url_; }
  bool head_only() const override { return true; }
  bool FollowRedirect(const ResponseHead& head, const std::string& next_url) override;
  Status OnRedirectEnd(const ResponseHead& head) override { return Take(head, true); }
  BodyUse OnSuccessHead(const ResponseHead& head, bool from_hub, Status* fail) override;
  Status OnSuccessEnd(const Answer& answer) override { return Take(answer.head, false); }
  void OnFinish(Status status) override;
  Status Take(const ResponseHead& head, bool redirect);

  std::string url_;
  Done done_;
  std::optional<FileMetadata> meta_;
};

}  // namespace modelsync::net
