// Request: one logical HTTP GET with the hub client's policy (internal to net/).
//
// An attempt starts at FirstUrl() and follows redirects itself (http/https only, at most
// kMaxRedirects hops, Authorization only on the hub's origin). A response counts as the
// hub's (`from_hub`: its ETag / X-Linked-Etag are the hub's claims about the file) on the
// hub's origin until a redirect hands over to a CDN: an absolute Location, or one carrying
// X-Linked-Etag / X-Linked-Size. A failed attempt (connection
// error, stall, 408, 429, 5xx) is retried after a backoff with full jitter, or after
// Retry-After; an attempt that made progress (MadeProgress()) resets the count and retries
// at once. Other errors finish the request through MapHttpError.
//
// Subclasses say where to go, check each response before its body is used, and take the
// body. Finish() runs exactly once; afterwards the Loop deletes the request (posted).
//
// Thread safety: loop thread only.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "base/status.h"
#include "net/errors.h"
#include "net/hub_options.h"
#include "net/rate_limiter.h"
#include "net/transport.h"
#include "net/url.h"

namespace modelsync::net {

class Request;

// What a response's body is for, decided once its head is in: the sink (kDeliver), an API
// buffer capped in size (kCollect: past Request::collect_cap() the request fails), the first
// 64 KiB of an error body (kCollectError), nothing (kDiscard: a redirect's body, read so the
// connection can be reused), or abort (kAbort: the exchange is dropped, no byte used).
enum class BodyUse { kDeliver, kCollect, kCollectError, kDiscard, kAbort };

// One exchange's answer as the Request kept it.
struct Answer {
  std::string url;
  ResponseHead head;
  BodyUse use = BodyUse::kDiscard;
  std::string collected;  // kCollect / kCollectError bodies
  bool collect_overflow = false;
  uint64_t body_bytes = 0;
};

// What every request shares; owned by the Hub, used on its loop thread.
struct Loop {
  Loop(boost::asio::io_context& i, Transport& t, RateLimiter& l, const HubOptions& o, Clock& c,
       std::string origin)
      : io(i), transport(t), limiter(l), options(o), clock(c), hub_origin(std::move(origin)) {}
  boost::asio::io_context& io;
  Transport& transport;
  RateLimiter& limiter;
  const HubOptions& options;
  Clock& clock;
  std::string hub_origin;  // UrlParts::Origin() of options.endpoint ("" if unparsable)
  std::mt19937_64 rng{options.seed};  // HubOptions::seed: backoff jitter replays exactly
  std::atomic<uint64_t> requests{0}, body_bytes{0}, retries{0}, connections{0}, clock_checks{0},
      placed_bytes{0};
  // Called once a request has finished; deletes it later (never from its own stack).
  std::function<void(Request*)> release;
  // Called when a fetch pauses for the rate limiter.
  std::function<void(Request*)> paused;
  // Signed CDN URLs the hub redirected a file to, by "repo\ncommit\npath", reused for the
  // file's next ranges until shortly before they expire (FetchRequest).
  struct CdnLink {
    std::string url;
    int64_t expires_ms = 0;  // wall clock
  };
  std::map<std::string, CdnLink> cdn_links;
  // Origins (UrlParts::Origin()) that answered over HTTP/2 or later: their requests wait for
  // a connection being set up rather than open another (ExchangeSpec::pipewait).
  std::set<std::string> multiplexing;
};

class Request : public ExchangeHandler {
 public:
  static constexpr int kMaxRedirects = 10;

  Request(Loop& loop, ErrorContext ctx);
  virtual ~Request();
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  void Start();
  bool IsHubOrigin(const std::string& url) const;
  bool IsHubOrigin(const UrlParts& parts) const;
  void Cancel();   // finishes with kCancelled unless already finished
  void Unpause();  // after a pause (the rate limiter's, or a sink's: Ready())
  // Whether the receiver takes the next body piece now; false pauses the request until the
  // Hub wakes the paused ones and this says true (FetchSink::Ready).
  virtual bool Ready() { return true; }
  bool finished() const { return finished_; }

 protected:
  virtual std::string FirstUrl() const = 0;
  virtual std::string RangeHeader() const { return ""; }
  virtual uint64_t RangeBytes() const { return 0; }  // what RangeHeader asks for
  virtual bool accept_json() const { return false; }
  virtual bool head_only() const { return false; }
  // A checked redirect to next_url: follow it (true), or end the request with
  // OnRedirectEnd(head) (false).
  virtual bool FollowRedirect(const ResponseHead& /*head*/, const std::string& /*next_url*/) {
    return true;
  }
  virtual Status OnRedirectEnd(const ResponseHead& /*head*/) { return Status::Ok(); }
  virtual size_t collect_cap() const { return 64 * 1024; }
  // A 3xx from the hub's origin, before following it. Non-OK fails the request.
  virtual Status CheckRedirect(const ResponseHead&, bool /*from_hub*/) { return Status::Ok(); }
  // A 2xx: kDeliver/kCollect to take the body, or kAbort with *fail set.
  virtual BodyUse OnSuccessHead(const ResponseHead& head, bool from_hub, Status* fail) = 0;
  // kDeliver bodies. Non-OK aborts the request with that status.
  virtual Status OnData(const char*, size_t) { return Status::Ok(); }
  // kDeliver bodies received in place (ExchangeHandler::BodySpaceFor): memory for up to
  // `want` of the next bytes (*size 0: none, they come through OnData), then OnPlaced with
  // what came into it (0: nothing). Non-OK aborts the request with that status.
  virtual Status PlaceFor(size_t want, char** data, size_t* size) {
    (void)want;
    *data = nullptr;
    *size = 0;
    return Status::Ok();
  }
  virtual Status OnPlaced(size_t) { return Status::Ok(); }
  // The 2xx transfer ended without a curl error. OK finishes the request; kTransient
  // retries; anything else finishes with it.
  virtual Status OnSuccessEnd(const Answer& answer) = 0;
  // Whether the current attempt delivered bytes (resets the attempt count).
  virtual bool MadeProgress() const { return false; }
  // Called at the start of each attempt.
  virtual void OnAttemptStart() {}
  // Whether FirstUrl() is the hub's (its answers are the hub's word); false for a URL the hub
  // handed over to earlier (a cached CDN link).
  virtual bool FirstUrlIsHub() const { return true; }
  // A final HTTP error (4xx) of the current attempt: true starts the attempt again from
  // FirstUrl() instead of failing (a cached CDN link that expired goes back to the hub).
  virtual bool RestartAfter(const ResponseHead& /*head*/) { return false; }
  virtual void OnFinish(Status status) = 0;

  Loop& loop_;
  ErrorContext ctx_;

 private:
  bool OnHead(const ResponseHead& head) override;
  BodyAction OnBody(const char* data, size_t n) override;
  BodySpace BodySpaceFor(size_t want) override;
  BodyAction OnBodyPlaced(size_t n) override;
  BodyUse UseFor(const ResponseHead& head);
  void OnExchangeDone(const ExchangeResult& result);

  void StartExchange(const std::string& url);
  void Retry(Status why, std::optional<std::chrono::milliseconds> retry_after);
  void WaitThen(std::chrono::milliseconds delay);
  void PollFakeClock(Clock::TimePoint deadline);
  void Finish(Status status);

  // A proxy answered or failed for the attempt that just ended: its Status, or OK.
  Status ProxyFailure(const ExchangeResult& result, const Answer& answer) const;

  std::unique_ptr<Transport::Exchange> exchange_;
  Answer answer_;  // of the current exchange
  ProxyChoice proxy_;  // the current exchange's proxy (url "" = direct)
  boost::asio::steady_timer wait_timer_;
  enum class Kind { kNone, kRedirect, kSuccess, kRetryable, kError } kind_ = Kind::kNone;
  Status abort_status_;  // set when we aborted a transfer on purpose
  int hops_ = 0;
  int failed_attempts_ = 0;  // consecutive attempts without progress
  int retry_http_status_ = 0;  // the HTTP status that made the coming retry (0: none)
  bool finished_ = false;
  bool from_hub_ = false;    // the current exchange answers for the hub (its ETag is checked)
  bool hub_answer_ = true;   // no hop so far handed over to a CDN (see the redirect case)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace modelsync::net
