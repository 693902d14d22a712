#include "net/request.h"

#include <algorithm>
#include <cstdio>
#include <boost/asio/post.hpp>
#include <cstdlib>

namespace modelsync::net {
namespace {

bool IsRedirect(long st) { return st == 301 || st == 302 || st == 303 || st == 307 || st == 308; }
bool IsRetryableStatus(long st) { return st == 408 || st == 429 || st >= 500; }

// Retry-After as integer seconds (HTTP dates are ignored, as huggingface_hub does).
std::optional<std::chrono::milliseconds> ParseRetryAfter(const ResponseHead& head) {
  auto v = head.Get("retry-after");
  if (!v || v->empty() || v->size() > 9) return std::nullopt;
  for (char c : *v) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::chrono::seconds(std::strtol(v->c_str(), nullptr, 10));
}

std::string HostOf(const std::string& url) {
  auto p = ParseUrl(url);
  return p.ok() ? p->host + ":" + p->port : "?";
}

}  // namespace

Request::Request(Loop& loop, ErrorContext ctx)
    : loop_(loop), ctx_(std::move(ctx)), wait_timer_(loop.io) {}

Request::~Request() {
  *alive_ = false;
  if (exchange_) loop_.multi.Remove(exchange_->easy());
}

bool Request::IsHubOrigin(const std::string& url) const {
  auto p = ParseUrl(url);
  return p.ok() && !loop_.hub_origin.empty() && p->Origin() == loop_.hub_origin;
}

void Request::Start() {
  if (loop_.options.offline) {
    Finish(Status::Offline("HF_HUB_OFFLINE is set: not contacting the hub for " + ctx_.Describe() +
                           "; unset it to download"));
    return;
  }
  hops_ = 0;
  OnAttemptStart();
  hub_answer_ = FirstUrlIsHub();
  StartExchange(FirstUrl());
}

void Request::StartExchange(const std::string& url) {
  Exchange::Options o;
  o.url = url;
  if (auto parts = ParseUrl(url); parts.ok()) o.pipewait = loop_.multiplexing.count(parts->Origin()) > 0;
  const bool hub_origin = IsHubOrigin(url);
  from_hub_ = hub_answer_ && hub_origin;
  if (hub_origin && !loop_.options.token.empty()) o.authorization = "Bearer " + loop_.options.token;
  o.range = RangeHeader();
  o.user_agent = loop_.options.user_agent;
  o.connect_timeout_ms = static_cast<long>(loop_.options.connect_timeout.count());
  o.stall_seconds = static_cast<long>((loop_.options.stall_timeout.count() + 999) / 1000);
  o.collect_cap = collect_cap();
  o.accept_json = accept_json();
  o.head = head_only();
  o.ca_file = loop_.options.ca_file;
  o.ca_dir = loop_.options.ca_dir;
  proxy_ = ChooseProxy(loop_.options.proxy, url);
  o.proxy = proxy_.url;
  kind_ = Kind::kNone;
  abort_status_ = Status::Ok();
  exchange_ = std::make_unique<Exchange>(std::move(o), this);
  ++loop_.requests;
  CURLMcode rc = loop_.multi.Add(exchange_->easy(), this);
  if (rc != CURLM_OK) {
    exchange_.reset();
    Finish(Status::Permanent(std::string("cannot start a transfer: ") + curl_multi_strerror(rc)));
  }
}

BodyUse Request::OnHeaders(const ResponseHead& head) {
  const long st = head.status;
  if (IsRedirect(st) && head.Get("location")) {
    kind_ = Kind::kRedirect;
    Status s = CheckRedirect(head, from_hub_);
    if (!s.ok()) {
      abort_status_ = s;
      return BodyUse::kAbort;
    }
    return BodyUse::kDiscard;  // read the (small) body so the connection stays reusable
  }
  if (st >= 200 && st < 300) {
    kind_ = Kind::kSuccess;
    Status fail;
    BodyUse use = OnSuccessHead(head, from_hub_, &fail);
    if (use == BodyUse::kAbort) abort_status_ = fail.ok() ? Status::Permanent("aborted") : fail;
    return use;
  }
  kind_ = IsRetryableStatus(st) ? Kind::kRetryable : Kind::kError;
  return BodyUse::kCollectError;
}

bool Request::OnBody(const char* data, size_t n) {
  Status s = OnData(data, n);
  if (!s.ok()) {
    abort_status_ = s;
    return false;
  }
  loop_.limiter.Consume(n);
  return true;
}

bool Request::WantPause() {
  if (!loop_.limiter.ShouldPause()) return false;
  loop_.paused(this);
  return true;
}

void Request::Unpause() {
  if (exchange_ && !finished_) loop_.multi.Unpause(exchange_->easy());
}

void Request::OnTransferDone(CURL* easy, CURLcode result) {
  long opened = 0;
  if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &opened) == CURLE_OK && opened > 0) {
    loop_.connections += static_cast<uint64_t>(opened);
  }
  long version = 0;
  char* url = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK &&
      version >= CURL_HTTP_VERSION_2_0 &&
      curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url != nullptr) {
    if (auto parts = ParseUrl(url); parts.ok()) loop_.multiplexing.insert(parts->Origin());
  }
  std::unique_ptr<Exchange> ex = std::move(exchange_);
  if (finished_ || !ex) return;
  if (!abort_status_.ok()) {
    // A transient refusal of the answer (a range request answered 200, a wrong
    // Content-Range) is asked again like a 5xx; anything else ends the request.
    if (abort_status_.IsTransient()) {
      Retry(abort_status_, std::nullopt);
    } else {
      Finish(abort_status_);
    }
    return;
  }
  const ResponseHead& head = ex->head();
  if (Status p = ProxyFailure(easy, result, *ex); !p.ok()) {
    // Credentials or policy (407, 403) cannot change by asking again; a proxy that cannot
    // reach the hub, or cannot be reached, may recover.
    if (p.IsTransient()) {
      Retry(p, std::nullopt);
    } else {
      Finish(p);
    }
    return;
  }
  if (result != CURLE_OK) {
    if (kind_ == Kind::kSuccess && ex->body_use() == BodyUse::kCollect && ex->collect_overflow()) {
      Finish(Status::Permanent("the hub's answer for " + ctx_.Describe() + " is larger than " +
                               std::to_string(collect_cap() >> 20) +
                               " MiB: refusing it (wrong endpoint?)"));
      return;
    }
    const std::string host = HostOf(ex->url());
    if (!IsRetryableCurlError(result)) {
      Finish(MapCurlError(ctx_, result, host, failed_attempts_ + 1, ex->error_detail()));
      return;
    }
    Retry(MapCurlError(ctx_, result, host, failed_attempts_ + 1, ex->error_detail()),
          std::nullopt);
    return;
  }
  switch (kind_) {
    case Kind::kRedirect: {
      if (++hops_ > kMaxRedirects) {
        Finish(Status::Permanent("more than " + std::to_string(kMaxRedirects) + " redirects for " +
                                 ctx_.Describe() +
                                 ": the hub or CDN is misconfigured; check HF_ENDPOINT"));
        return;
      }
      auto next = ResolveLocation(ex->url(), *head.Get("location"));
      if (!next.ok()) {
        Finish(next.status().With(ctx_.Describe()));
        return;
      }
      if (Status t = CheckRedirectScheme(ex->url(), *next, loop_.options.allow_insecure_redirects);
          !t.ok()) {
        Finish(t.With(ctx_.Describe()));
        return;
      }
      if (Status t = CheckRedirectTarget(*next); !t.ok()) {
        Finish(t.With(ctx_.Describe()));
        return;
      }
      // What the next hop answers is still the hub's word (its ETag names the file) only
      // after a relative redirect that points at no content elsewhere (a renamed repo,
      // resolve-cache). An absolute Location, or one carrying X-Linked-Etag / X-Linked-Size,
      // hands over to a CDN, even one on the hub's own origin (a cache in front of both,
      // deploy/nginx/): that answer's ETag is the CDN's, not the file's hash.
      const std::string loc = head.Get("location").value_or("");  // Get returns a copy
      if (loc.find("://") != std::string::npos || loc.rfind("//", 0) == 0 ||
          head.Get("x-linked-etag") || head.Get("x-linked-size")) {
        hub_answer_ = false;
      }
      if (!FollowRedirect(head, *next)) {
        Finish(OnRedirectEnd(head));
        return;
      }
      StartExchange(*next);
      return;
    }
    case Kind::kSuccess: {
      Status s = OnSuccessEnd(*ex);
      if (s.ok() || !s.IsTransient()) {
        Finish(s);
      } else {
        Retry(s, std::nullopt);
      }
      return;
    }
    case Kind::kRetryable:
      retry_http_status_ = static_cast<int>(head.status);
      Retry(RetriesExhausted(ctx_, head, failed_attempts_ + 1), ParseRetryAfter(head));
      return;
    case Kind::kError:
      if (RestartAfter(head)) {
        Start();
        return;
      }
      Finish(MapHttpError(ctx_, head, ex->collected()));
      return;
    case Kind::kNone:
      Retry(Status::Transient("no HTTP response from " + HostOf(ex->url()) + " for " +
                              ctx_.Describe() + ": check the network and retry"),
            std::nullopt);
      return;
  }
}

Status Request::ProxyFailure(CURL* easy, CURLcode result, const Exchange& ex) const {
  if (proxy_.url.empty()) return Status::Ok();
  auto parts = ParseUrl(ex.url());
  const std::string target = parts.ok() ? parts->host + ":" + parts->port : "?";
  long connect_code = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
  if (connect_code >= 300) return ProxyRefused(ctx_, proxy_, connect_code, target, true);
  if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_PROXY) {
    return ProxyUnreachable(ctx_, proxy_, result, failed_attempts_ + 1, ex.error_detail());
  }
  if (result != CURLE_OK) return Status::Ok();
  // Not tunnelled (an http:// target): the proxy answers in the response itself. Only a
  // proxy sends 407; a 401 or 403 without any of the hub's headers is the proxy's (tinyproxy
  // answers wrong credentials with 401). A 5xx stays a hub failure, retried as one: the two
  // cannot be told apart.
  const long st = ex.head().status;
  if (st == 407 || ((st == 401 || st == 403) && !LooksLikeHubAnswer(ex.head()))) {
    return ProxyRefused(ctx_, proxy_, st, target, false);
  }
  return Status::Ok();
}

void Request::Retry(Status why, std::optional<std::chrono::milliseconds> retry_after) {
  const bool progress = MadeProgress();
  failed_attempts_ = progress ? 0 : failed_attempts_ + 1;
  if (failed_attempts_ >= std::max(1, loop_.options.max_attempts)) {
    Finish(why);
    return;
  }
  ++loop_.retries;
  std::chrono::milliseconds delay{0};
  if (retry_after) {
    delay = std::min<std::chrono::milliseconds>(*retry_after, std::chrono::hours(1));
  } else if (!progress) {
    // Full jitter: uniform in [0, min(max, base * 2^(n-1))].
    int64_t cap = loop_.options.backoff_base.count();
    for (int i = 1; i < failed_attempts_ && cap < loop_.options.backoff_max.count(); ++i) cap *= 2;
    cap = std::min<int64_t>(cap, loop_.options.backoff_max.count());
    if (cap > 0)
      delay = std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(loop_.rng));
  }
  if (loop_.options.on_retry) {
    RetryNotice n;
    n.delay = delay;
    n.http_status = retry_http_status_;
    n.resuming = progress;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f s", static_cast<double>(delay.count()) / 1000);
    if (retry_after) {
      std::string reason = retry_http_status_ == 429   ? ", rate limited"
                        : retry_http_status_ == 503 ? ", service unavailable"
                                                    : "";
      n.message = "the hub asked to wait " + std::string(secs) + " (HTTP " +
                  std::to_string(retry_http_status_) + reason + ") before retrying " +
                  ctx_.Describe();
    } else if (progress) {
      n.message = "connection lost during " + ctx_.Describe() + " (" + why.message() +
                  "); resuming where it stopped";
    } else {
      n.message = why.message() + "; retry " + std::to_string(failed_attempts_) + " of " +
                  std::to_string(std::max(1, loop_.options.max_attempts) - 1) + " in " + secs;
    }
    loop_.options.on_retry(n);
  }
  retry_http_status_ = 0;
  WaitThen(delay);
}

void Request::WaitThen(std::chrono::milliseconds delay) {
  std::weak_ptr<bool> alive = alive_;
  auto start = [this, alive] {
    auto a = alive.lock();
    if (!a || !*a || finished_) return;
    Start();
  };
  if (delay.count() <= 0) {
    boost::asio::post(loop_.io, start);
    return;
  }
  if (&loop_.clock == SystemClock::Default()) {
    wait_timer_.expires_after(delay);
    wait_timer_.async_wait([start](const boost::system::error_code& ec) {
      if (!ec) start();
    });
    return;
  }
  PollFakeClock(loop_.clock.Now() + delay);
}

// A clock other than the system one (a FakeClock in tests) moves when it is told to:
// look at it every couple of milliseconds.
void Request::PollFakeClock(Clock::TimePoint deadline) {
  std::weak_ptr<bool> alive = alive_;
  wait_timer_.expires_after(std::chrono::milliseconds(2));
  wait_timer_.async_wait([this, alive, deadline](const boost::system::error_code& ec) {
    auto a = alive.lock();
    if (ec || !a || !*a || finished_) return;
    if (loop_.clock.Now() >= deadline) {
      Start();
    } else {
      PollFakeClock(deadline);
    }
  });
}

void Request::Cancel() {
  if (finished_) return;
  Finish(Status::Cancelled("cancelled: " + ctx_.Describe()));
}

void Request::Finish(Status status) {
  if (finished_) return;
  finished_ = true;
  if (exchange_) {
    loop_.multi.Remove(exchange_->easy());
    exchange_.reset();
  }
  boost::system::error_code ec;
  wait_timer_.cancel(ec);
  status = ScrubStatus(status, loop_.options.token);  // the token never leaves net/
  OnFinish(std::move(status));
  loop_.release(this);
}

}  // namespace modelsync::net
