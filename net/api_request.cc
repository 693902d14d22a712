#include "net/api_request.h"

namespace modelsync::net {

ApiRequest::ApiRequest(Loop& loop, ErrorContext ctx, std::string url, Done done)
    : Request(loop, std::move(ctx)), url_(std::move(url)), done_(std::move(done)) {}

BodyUse ApiRequest::OnSuccessHead(const ResponseHead& head, bool, Status* fail) {
  if (head.status != 200) {
    *fail = Status::Permanent("the hub answered HTTP " + std::to_string(head.status) + " for " +
                              ctx_.Describe() + " where 200 was expected: check HF_ENDPOINT");
    return BodyUse::kAbort;
  }
  return BodyUse::kCollect;
}

Status ApiRequest::OnSuccessEnd(const Answer& answer) {
  response_ = ApiResponse{answer.url, answer.head, answer.collected};
  return Status::Ok();
}

void ApiRequest::OnFinish(Status status) {
  if (status.ok() && response_) {
    done_(std::move(*response_));
  } else {
    done_(status.ok() ? Status::Permanent("no response") : std::move(status));
  }
}

HeadRequest::HeadRequest(Loop& loop, ErrorContext ctx, std::string url, Done done)
    : Request(loop, std::move(ctx)), url_(std::move(url)), done_(std::move(done)) {}

bool HeadRequest::FollowRedirect(const ResponseHead&, const std::string& next_url) {
  return IsHubOrigin(next_url);
}

BodyUse HeadRequest::OnSuccessHead(const ResponseHead& head, bool, Status* fail) {
  if (head.status != 200) {
    *fail = Status::Permanent("the hub answered HTTP " + std::to_string(head.status) + " for " +
                              ctx_.Describe() + " where 200 was expected: check HF_ENDPOINT");
    return BodyUse::kAbort;
  }
  return BodyUse::kDiscard;
}

Status HeadRequest::Take(const ResponseHead& head, bool redirect) {
  FileMetadata m;
  m.lfs = redirect;
  auto commit = head.Get("x-repo-commit");
  auto etag = head.Get("x-linked-etag");
  if (!etag) etag = head.Get("etag");
  auto size = head.Get("x-linked-size");
  if (!size && !redirect) size = head.Get("content-length");
  if (!commit || !etag || !size || size->empty() ||
      size->find_first_not_of("0123456789") != std::string::npos || size->size() > 19) {
    return Status::Permanent("the hub's answer for " + ctx_.Describe() +
                             " lacks X-Repo-Commit, ETag or a size: check HF_ENDPOINT points at "
                             "a hub");
  }
  m.commit = NormalizeEtag(*commit);
  m.etag = NormalizeEtag(*etag);
  m.size = std::stoull(*size);
  meta_ = std::move(m);
  return Status::Ok();
}

void HeadRequest::OnFinish(Status status) {
  if (status.ok() && meta_) {
    done_(std::move(*meta_));
  } else {
    done_(status.ok() ? Status::Permanent("no response") : std::move(status));
  }
}

}  // namespace modelsync::net
