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

Status ApiRequest::OnSuccessEnd(const Exchange& ex) {
  response_ = ApiResponse{ex.url(), ex.head(), ex.collected()};
  return Status::Ok();
}

void ApiRequest::OnFinish(Status status) {
  if (status.ok() && response_) {
    done_(std::move(*response_));
  } else {
    done_(status.ok() ? Status::Permanent("no response") : std::move(status));
  }
}

}  // namespace modelsync::net
