#include "net/request.h"

#include <algorithm>
#include <cstdio>
#include <boost/asio/post.hpp>
#include <cstdlib>

namespace modelsync::net {
namespace {

// A range at least this long asks for a connection of its own (ExchangeSpec::own_connection):
// at 50 MB/s it lasts 20 ms or more, long next to a connection's set-up on a near link, and
// small files (a config, a tokenizer) stay on a shared HTTP/2 connection.
constexpr uint64_t kOwnConnectionBytes = 1ull << 20;

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
  exchange_.reset();  // stops it (no callback)
}

bool Request::IsHubOrigin(const std::string& url) const {
  auto p = ParseUrl(url);
  return p.ok() && IsHubOrigin(*p);
}

bool Request::IsHubOrigin(const UrlParts& parts) const {
  return !loop_.hub_origin.empty() && parts.Origin() == loop_.hub_origin;
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
  ExchangeSpec o;
  o.url = url;
  auto parts = ParseUrl(url);
  const bool hub_origin = parts.ok() && IsHubOrigin(*parts);
  from_hub_ = hub_answer_ && hub_origin;
  if (hub_origin && !loop_.options.token.empty()) o.authorization = "Bearer " + loop_.options.token;
  o.range = RangeHeader();
  o.range_bytes = RangeBytes();
  // A long range gets a connection of its own; a short one (a small file, the last bytes
  // of a file) shares a multiplexed one, where that saves a connection's set-up.
  o.own_connection = o.range_bytes >= kOwnConnectionBytes;
  o.pipewait = !o.own_connection && parts.ok() && loop_.multiplexing.count(parts->Origin()) > 0;
  o.user_agent = loop_.options.user_agent;
  o.connect_timeout = loop_.options.connect_timeout;
  o.stall_timeout = loop_.options.stall_timeout;
  o.accept_json = accept_json();
  o.head = head_only();
  o.ca_file = loop_.options.ca_file;
  o.ca_dir = loop_.options.ca_dir;
  o.resolve = loop_.options.resolve;
  proxy_ = ChooseProxy(loop_.options.proxy, url);
  o.proxy = proxy_.url;
  kind_ = Kind::kNone;
  abort_status_ = Status::Ok();
  answer_ = Answer();
  answer_.url = url;
  ++loop_.requests;
  auto started = loop_.transport.Start(
      o, this, [this](const ExchangeResult& r) { OnExchangeDone(r); });
  if (!started.ok()) {
    Finish(started.status());
    return;
  }
  exchange_ = std::move(*started);
}

bool Request::OnHead(const ResponseHead& head) {
  answer_.head = head;
  answer_.use = UseFor(answer_.head);
  return answer_.use != BodyUse::kAbort;
}

BodyUse Request::UseFor(const ResponseHead& head) {
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

BodyAction Request::OnBody(const char* data, size_t n) {
  switch (answer_.use) {
    case BodyUse::kDeliver: {
      if (!Ready() || loop_.limiter.ShouldPause()) {
        loop_.paused(this);
        return BodyAction::kPause;
      }
      answer_.body_bytes += n;
      Status s = OnData(data, n);
      if (!s.ok()) {
        abort_status_ = s;
        return BodyAction::kStop;
      }
      loop_.limiter.Consume(n);
      return BodyAction::kTaken;
    }
    case BodyUse::kCollect: {
      const size_t cap = collect_cap();
      if (n > cap - std::min(cap, answer_.collected.size())) {
        answer_.collect_overflow = true;  // past the cap: stop reading
        return BodyAction::kStop;
      }
      answer_.collected.append(data, n);
      answer_.body_bytes += n;
      return BodyAction::kTaken;
    }
    case BodyUse::kCollectError: {
      constexpr size_t kErrorCap = 64 * 1024;
      if (answer_.collected.size() < kErrorCap) {
        answer_.collected.append(data, std::min(n, kErrorCap - answer_.collected.size()));
      }
      answer_.body_bytes += n;
      return BodyAction::kTaken;
    }
    case BodyUse::kDiscard:
      answer_.body_bytes += n;
      return BodyAction::kTaken;
    case BodyUse::kAbort:
      return BodyAction::kStop;
  }
  return BodyAction::kStop;
}

BodySpace Request::BodySpaceFor(size_t want) {
  BodySpace space;
  if (answer_.use != BodyUse::kDeliver) return space;  // through OnBody
  if (!Ready() || loop_.limiter.ShouldPause()) {
    loop_.paused(this);
    space.action = BodyAction::kPause;
    return space;
  }
  Status s = PlaceFor(want, &space.data, &space.size);
  if (!s.ok()) {
    abort_status_ = s;
    space = BodySpace();
    space.action = BodyAction::kStop;
  }
  return space;
}

BodyAction Request::OnBodyPlaced(size_t n) {
  answer_.body_bytes += n;
  Status s = OnPlaced(n);
  if (!s.ok()) {
    abort_status_ = s;
    return BodyAction::kStop;
  }
  loop_.limiter.Consume(n);
  return BodyAction::kTaken;
}

void Request::Unpause() {
  if (exchange_ && !finished_) exchange_->Unpause();
}

void Request::OnExchangeDone(const ExchangeResult& result) {
  loop_.connections += result.connections_opened;
  loop_.placed_bytes += result.placed_bytes;
  if (result.multiplexed) {
    if (auto parts = ParseUrl(answer_.url); parts.ok()) loop_.multiplexing.insert(parts->Origin());
  }
  // The exchange ends with this call; the answer stays for the decisions below.
  std::unique_ptr<Transport::Exchange> ex = std::move(exchange_);
  const Answer answer = std::move(answer_);
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
  const ResponseHead& head = answer.head;
  if (Status p = ProxyFailure(result, answer); !p.ok()) {
    // Credentials or policy (407, 403) cannot change by asking again; a proxy that cannot
    // reach the hub, or cannot be reached, may recover.
    if (p.IsTransient()) {
      Retry(p, std::nullopt);
    } else {
      Finish(p);
    }
    return;
  }
  if (result.error != TransportError::kNone) {
    if (kind_ == Kind::kSuccess && answer.use == BodyUse::kCollect && answer.collect_overflow) {
      Finish(Status::Permanent("the hub's answer for " + ctx_.Describe() + " is larger than " +
                               std::to_string(collect_cap() >> 20) +
                               " MiB: refusing it (wrong endpoint?)"));
      return;
    }
    const std::string host = HostOf(answer.url);
    Status failed = MapTransportError(ctx_, result, host, failed_attempts_ + 1);
    if (!IsRetryable(result.error)) {
      Finish(failed);
      return;
    }
    Retry(failed, std::nullopt);
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
      auto next = ResolveLocation(answer.url, *head.Get("location"));
      if (!next.ok()) {
        Finish(next.status().With(ctx_.Describe()));
        return;
      }
      if (Status t = CheckRedirectScheme(answer.url, *next, loop_.options.allow_insecure_redirects);
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
      Status s = OnSuccessEnd(answer);
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
      Finish(MapHttpError(ctx_, head, answer.collected));
      return;
    case Kind::kNone:
      Retry(Status::Transient("no HTTP response from " + HostOf(answer.url) + " for " +
                              ctx_.Describe() + ": check the network and retry"),
            std::nullopt);
      return;
  }
}

Status Request::ProxyFailure(const ExchangeResult& result, const Answer& answer) const {
  if (proxy_.url.empty()) return Status::Ok();
  auto parts = ParseUrl(answer.url);
  const std::string target = parts.ok() ? parts->host + ":" + parts->port : "?";
  if (result.proxy_connect_status >= 300)
    return ProxyRefused(ctx_, proxy_, result.proxy_connect_status, target, true);
  if (result.error == TransportError::kConnect || result.error == TransportError::kProxyResolve) {
    return ProxyUnreachable(ctx_, proxy_, result, failed_attempts_ + 1);
  }
  if (result.error != TransportError::kNone) return Status::Ok();
  // Not tunnelled (an http:// target): the proxy answers in the response itself. Only a
  // proxy sends 407; a 401 or 403 without any of the hub's headers is the proxy's (tinyproxy
  // answers wrong credentials with 401). A 5xx stays a hub failure, retried as one: the two
  // cannot be told apart.
  const long st = answer.head.status;
  if (st == 407 || ((st == 401 || st == 403) && !LooksLikeHubAnswer(answer.head))) {
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
      Start();  // sends the request (or finishes it) now; `this` is deleted only later
    } else {
      PollFakeClock(deadline);
    }
    ++loop_.clock_checks;  // after acting: whoever waits for the count sees the outcome
  });
}

void Request::Cancel() {
  if (finished_) return;
  Finish(Status::Cancelled("cancelled: " + ctx_.Describe()));
}

void Request::Finish(Status status) {
  if (finished_) return;
  finished_ = true;
  exchange_.reset();  // stops it (no callback)
  boost::system::error_code ec;
  wait_timer_.cancel(ec);
  status = ScrubStatus(status, loop_.options.token);  // the token never leaves net/
  OnFinish(std::move(status));
  loop_.release(this);
}

}  // namespace modelsync::net
