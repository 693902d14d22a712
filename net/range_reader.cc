#include "net/range_reader.h"

#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/platform.h"
#include "base/strings.h"
#include "net/http1.h"
#include "net/range_conn.h"
#include "net/url.h"

namespace modelsync::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The transport's own timing (connect and stall timeouts, idle connections) is real time,
// as libcurl's is.
Clock::TimePoint Now() { return SystemClock::Default()->Now(); }

constexpr size_t kHeadCap = 64 * 1024;     // a response head larger than this is refused
constexpr size_t kReadChunk = 64 * 1024;   // reads of a head, and of bodies not received in place
constexpr size_t kTurnBytes = 2u << 20;    // body bytes read per loop turn before others run
constexpr auto kIdleMax = std::chrono::seconds(60);  // a kept connection unused longer is closed
constexpr uint64_t kLowWater = 256 * 1024;  // bytes a body's read waits for (SetLowWater)

// Where an exchange goes.
struct Target {
  bool tls = false;
  std::string host;       // to resolve and to check the certificate against (no brackets)
  std::string port;
  std::string authority;  // the Host header
  std::string path;       // the request target: path and query
  std::string origin;     // which kept connections may carry it
};

// false: a URL left to libcurl (credentials in it, not http(s), unparsable, an IPv6 zone).
bool ParseTarget(const std::string& url, Target* t) {
  auto p = ParseUrl(url);
  if (!p.ok() || p->credentials || p->host.find('%') != std::string::npos) return false;
  t->tls = p->scheme == "https";
  t->host = p->host.size() > 2 && p->host.front() == '[' && p->host.back() == ']'
                ? p->host.substr(1, p->host.size() - 2)
                : p->host;
  t->port = p->port;
  t->authority = p->authority;
  t->path = p->target;
  t->origin = p->Origin();
  return true;
}

class RangeReader;

// One exchange. Kept alive by the asynchronous operations that refer to it, so a handle
// destroyed with a wait pending leaves no dangling callback: each checks `dead_` first.
class RangeOp : public std::enable_shared_from_this<RangeOp> {
 public:
  RangeOp(RangeReader& owner, asio::io_context& io, ExchangeSpec spec, Target target,
          ExchangeHandler* handler, Transport::Done done)
      : owner_(owner),
        io_(io),
        spec_(std::move(spec)),
        target_(std::move(target)),
        handler_(handler),
        done_(std::move(done)),
        resolver_(io),
        timer_(io) {}

  bool dead() const { return dead_; }
  void Begin();
  void Unpause();
  // Ends the exchange without a Done (the handle was destroyed, or the transport shut down).
  void Stop();

 private:
  using Step = void (RangeOp::*)();
  void Resolve();
  void Connect(std::vector<tcp::endpoint> endpoints);
  void StartTls();
  void Handshake();
  void StartSend();
  void Send();
  void ReadHead();
  void OnHeadComplete(size_t end);
  void Body();
  void Complete();
  void Fallback();
  void Reconnect();
  void Wait(Io want, Step then);
  void WatchStall();
  void SetLowWater();
  int Queued() const;  // bytes received by the kernel, not read yet
  void Finish(TransportError error, std::string detail);
  // Marks the exchange over and lets go of everything it holds; false if it was already.
  bool End();
  void Close();

  RangeReader& owner_;
  asio::io_context& io_;
  ExchangeSpec spec_;
  Target target_;
  ExchangeHandler* handler_;
  Transport::Done done_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // the connect deadline, then the stall watch
  std::unique_ptr<Conn> conn_;
  std::shared_ptr<ConnectRace> race_;  // while connecting
  std::unique_ptr<Transport::Exchange> inner_;  // after Fallback: libcurl's exchange
  bool reused_ = false;   // conn_ was kept from an earlier exchange (replaced once if it died)
  bool dead_ = false;
  bool paused_ = false;
  bool connecting_ = false;
  bool keep_alive_ = false;
  uint64_t opened_ = 0;
  uint64_t placed_ = 0;
  std::string request_;
  size_t sent_ = 0;
  std::string head_;      // the response head as read, and what came after it
  size_t scanned_ = 0;    // head_ searched for its end up to here
  std::vector<char> buf_;          // bytes read that the handler has not taken yet
  size_t pend_begin_ = 0, pend_end_ = 0;
  uint64_t body_left_ = 0;
  bool slow_ = false;    // bytes waited below the mark for a stall time: no mark any more
  Clock::TimePoint last_data_;
};

class RangeReader final : public Transport {
 public:
  RangeReader(asio::io_context& io, int max_connections, std::unique_ptr<Transport> other)
      : io_(io), max_idle_(static_cast<size_t>(std::max(1, max_connections))), other_(std::move(other)) {}
  ~RangeReader() override {
    for (auto& [key, ctx] : tls_) SSL_CTX_free(ctx);
  }

  Result<std::unique_ptr<Exchange>> Start(const ExchangeSpec& spec, ExchangeHandler* handler,
                                          Done done) override {
    Target t;
    if (!spec.own_connection || !spec.proxy.empty() || spec.head || spec.accept_json ||
        !ParseTarget(spec.url, &t)) {
      return other_->Start(spec, handler, std::move(done));
    }
    auto op = std::make_shared<RangeOp>(*this, io_, spec, std::move(t), handler, std::move(done));
    live_.insert(op.get());
    asio::post(io_, [op] {
      if (!op->dead()) op->Begin();
    });
    return std::unique_ptr<Exchange>(new Handle(op));
  }

  void Shutdown() override {
    const std::set<RangeOp*> live = live_;
    for (RangeOp* op : live) op->Stop();
    idle_.clear();
    other_->Shutdown();
  }

  Transport& other() { return *other_; }
  void Forget(RangeOp* op) { live_.erase(op); }

  // A kept connection to origin that still looks open, or null.
  std::unique_ptr<Conn> TakeIdle(const std::string& origin) {
    const auto now = Now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (now - (*it)->idle_since > kIdleMax) {
        it = idle_.erase(it);
        continue;
      }
      if ((*it)->origin != origin) {
        ++it;
        continue;
      }
      std::unique_ptr<Conn> c = std::move(*it);
      it = idle_.erase(it);
      // Readable while idle, or bytes read ahead: the server closed it (or sent what nobody
      // asked for).
      pollfd p{c->socket.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 0) == 0 && (c->ssl == nullptr || SSL_has_pending(c->ssl) == 0)) return c;
    }
    return nullptr;
  }

  void Keep(std::unique_ptr<Conn> c) {
    c->idle_since = Now();
    idle_.push_back(std::move(c));
    while (idle_.size() > max_idle_) idle_.pop_front();
  }

  // The TLS context for this set of trusted CAs (made once), or null with *error set.
  SSL_CTX* Tls(const std::string& ca_file, const std::string& ca_dir, std::string* error) {
    const std::string key = ca_file + '\n' + ca_dir;
    if (auto it = tls_.find(key); it != tls_.end()) return it->second;
    SSL_CTX* ctx = MakeTlsContext(ca_file, ca_dir, error);
    if (ctx == nullptr) return nullptr;
    tls_[key] = ctx;
    return ctx;
  }

 private:
  class Handle final : public Exchange {
   public:
    explicit Handle(std::shared_ptr<RangeOp> op) : op_(std::move(op)) {}
    ~Handle() override { op_->Stop(); }
    void Unpause() override { op_->Unpause(); }

   private:
    std::shared_ptr<RangeOp> op_;
  };

  asio::io_context& io_;
  const size_t max_idle_;
  std::unique_ptr<Transport> other_;
  std::set<RangeOp*> live_;
  std::deque<std::unique_ptr<Conn>> idle_;
  std::map<std::string, SSL_CTX*> tls_;
};

void RangeOp::Begin() {
  conn_ = owner_.TakeIdle(target_.origin);
  if (conn_ != nullptr) {
    reused_ = true;
    StartSend();
    return;
  }
  Resolve();
}

void RangeOp::Resolve() {
  connecting_ = true;
  timer_.expires_after(spec_.connect_timeout);
  std::weak_ptr<RangeOp> weak = weak_from_this();
  timer_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->dead_ || !self->connecting_) return;
    self->Finish(TransportError::kTimeout,
                 "connection to " + self->target_.host + " timed out after " +
                     std::to_string(self->spec_.connect_timeout.count()) + " ms");
  });
  // Addresses given for this host (HubOptions::resolve) take the resolver's place.
  if (std::optional<std::vector<tcp::endpoint>> given = GivenAddresses(spec_.resolve, target_.host,
                                                                       target_.port)) {
    if (given->empty()) {
      Finish(TransportError::kResolve, "no usable address given for " + target_.host + ":" +
                                           target_.port + " (resolve)");
      return;
    }
    Connect(std::move(*given));
    return;
  }
  auto self = shared_from_this();
  resolver_.async_resolve(
      target_.host, target_.port,
      [self](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
        if (self->dead_) return;
        if (ec || results.empty()) {
          self->Finish(TransportError::kResolve,
                       "could not resolve host: " + self->target_.host +
                           (ec ? " (" + ec.message() + ")" : std::string()));
          return;
        }
        std::vector<tcp::endpoint> endpoints;
        for (const auto& r : results) endpoints.push_back(r.endpoint());
        self->Connect(std::move(endpoints));
      });
}

// The host's addresses raced (ConnectRace: the next one 200 ms after the one before, if
// that has not connected), all under the connect deadline set in Resolve.
void RangeOp::Connect(std::vector<tcp::endpoint> endpoints) {
  std::weak_ptr<RangeOp> weak = weak_from_this();
  race_ = ConnectRace::Start(
      io_, std::move(endpoints), kAttemptDelay,
      [weak](const boost::system::error_code& e, std::unique_ptr<Conn> conn,
             const tcp::endpoint&) {
        auto self = weak.lock();
        if (!self || self->dead_) return;
        self->race_.reset();
        if (e || conn == nullptr) {
          self->Finish(TransportError::kConnect,
                       "failed to connect to " + self->target_.host + " port " +
                           self->target_.port + ": " +
                           (e ? e.message() : std::string("no address to connect to")));
          return;
        }
        self->conn_ = std::move(conn);
        self->conn_->origin = self->target_.origin;
        ++self->opened_;
        boost::system::error_code ignored;
        self->conn_->socket.non_blocking(true, ignored);
        self->conn_->socket.set_option(tcp::no_delay(true), ignored);
        if (self->target_.tls) {
          self->StartTls();
        } else {
          self->StartSend();
        }
      });
}

void RangeOp::StartTls() {
  std::string error;
  SSL_CTX* ctx = owner_.Tls(spec_.ca_file, spec_.ca_dir, &error);
  if (ctx == nullptr) {
    Finish(TransportError::kTls, error);
    return;
  }
  if (!StartTlsSession(*conn_, ctx, target_.host, &error)) {
    Finish(TransportError::kTls, error);
    return;
  }
  Handshake();
}

void RangeOp::Handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(conn_->ssl);
  if (r == 1) {
    StartSend();
    return;
  }
  switch (SSL_get_error(conn_->ssl, r)) {
    case SSL_ERROR_WANT_READ:
      Wait(Io::kWantRead, &RangeOp::Handshake);
      return;
    case SSL_ERROR_WANT_WRITE:
      Wait(Io::kWantWrite, &RangeOp::Handshake);
      return;
    default: {
      const long verify = SSL_get_verify_result(conn_->ssl);
      std::string why = verify != X509_V_OK
                            ? std::string("SSL certificate problem: ") +
                                  X509_verify_cert_error_string(verify)
                            : TlsErrorText();
      if (why.empty()) why = "the TLS handshake failed (the connection closed)";
      Finish(TransportError::kTls, why);
    }
  }
}

void RangeOp::StartSend() {
  connecting_ = false;
  request_ = "GET " + target_.path + " HTTP/1.1\r\nHost: " + target_.authority + "\r\n";
  if (!spec_.user_agent.empty()) request_ += "User-Agent: " + spec_.user_agent + "\r\n";
  request_ += "Accept: */*\r\n";
  if (!spec_.range.empty()) request_ += "Range: " + spec_.range + "\r\n";
  if (!spec_.authorization.empty()) request_ += "Authorization: " + spec_.authorization + "\r\n";
  request_ += "\r\n";
  sent_ = 0;
  head_.clear();
  scanned_ = 0;
  last_data_ = Now();
  WatchStall();
  Send();
}

void RangeOp::Send() {
  while (sent_ < request_.size()) {
    size_t put = 0;
    std::string error;
    const Io io = WriteSome(*conn_, request_.data() + sent_, request_.size() - sent_, &put, &error);
    if (io == Io::kOk) {
      sent_ += put;
      continue;
    }
    if (io == Io::kWantRead || io == Io::kWantWrite) {
      Wait(io, &RangeOp::Send);
      return;
    }
    if (reused_) {
      Reconnect();
      return;
    }
    Finish(TransportError::kDropped, "sending the request failed: " + error);
    return;
  }
  ReadHead();
}

void RangeOp::ReadHead() {
  for (;;) {
    const size_t had = head_.size();
    head_.resize(had + kReadChunk);
    size_t got = 0;
    std::string error;
    const Io io = ReadSome(*conn_, head_.data() + had, kReadChunk, &got, &error);
    head_.resize(had + got);
    if (io == Io::kOk) {
      last_data_ = Now();
      const size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
      const size_t end = head_.find("\r\n\r\n", from);
      scanned_ = head_.size();
      // The cap holds wherever the reads happened to split: a head whose end came in the
      // read that crossed 64 KiB is over it all the same (it was read on, and a head without
      // a Content-Length then went to libcurl: one request more, as CI's ASan run counted).
      if ((end == std::string::npos ? head_.size() : end + 4) > kHeadCap) {
        Finish(TransportError::kDropped, "the server's response head is over 64 KiB");
        return;
      }
      if (end != std::string::npos) {
        OnHeadComplete(end);
        return;
      }
      continue;
    }
    if (io == Io::kWantRead || io == Io::kWantWrite) {
      Wait(io, &RangeOp::ReadHead);
      return;
    }
    if (reused_ && head_.empty()) {  // a kept connection the server had closed
      Reconnect();
      return;
    }
    Finish(TransportError::kDropped,
           io == Io::kEof ? (head_.empty() ? "Empty reply from server"
                                           : "the connection closed in the response's head")
                          : "receiving the response failed: " + error);
    return;
  }
}

void RangeOp::OnHeadComplete(size_t end) {
  ResponseHead head;
  int minor = 1;
  if (!ParseHead(std::string_view(head_).substr(0, end), &head, &minor)) {
    Finish(TransportError::kDropped, "the server's reply is not HTTP/1.x");
    return;
  }
  if (head.status >= 100 && head.status < 200) {
    if (head.status == 101) {
      Finish(TransportError::kDropped, "the server switched protocols (HTTP 101)");
      return;
    }
    head_.erase(0, end + 4);  // an interim answer (100 Continue): the real one follows
    scanned_ = 0;
    const size_t next = head_.find("\r\n\r\n");
    if (next != std::string::npos) {
      OnHeadComplete(next);
    } else {
      ReadHead();
    }
    return;
  }
  const std::optional<int64_t> length = ContentLength(head);
  if (length && *length < 0) {
    Finish(TransportError::kDropped, "the server sent an invalid Content-Length");
    return;
  }
  const bool no_body = head.status == 204 || head.status == 304;
  if (!no_body && (!length || head.Get("transfer-encoding"))) {
    Fallback();  // chunked, or ended by closing: libcurl reads those
    return;
  }
  body_left_ = no_body ? 0 : static_cast<uint64_t>(*length);
  const auto connection = head.Get("connection");
  keep_alive_ = minor == 1 ? !HasToken(connection, "close") : HasToken(connection, "keep-alive");
  // What came after the head is the body's first bytes.
  buf_.assign(head_.begin() + static_cast<std::ptrdiff_t>(end + 4), head_.end());
  pend_begin_ = 0;
  pend_end_ = buf_.size();
  head_.clear();
  head_.shrink_to_fit();
  if (!handler_->OnHead(head)) {
    Finish(TransportError::kAborted, "the response was refused");
    return;
  }
  Body();
}

void RangeOp::Body() {
  size_t turn = 0;
  while (!dead_) {
    if (pend_begin_ < pend_end_ && body_left_ > 0) {  // read earlier, not taken yet
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pend_end_ - pend_begin_, body_left_));
      const BodyAction a = handler_->OnBody(buf_.data() + pend_begin_, n);
      if (a == BodyAction::kPause) {
        paused_ = true;
        return;
      }
      if (a == BodyAction::kStop) {
        Finish(TransportError::kAborted, "the body was refused");
        return;
      }
      pend_begin_ += n;
      body_left_ -= n;
      continue;
    }
    if (body_left_ == 0) {
      Complete();
      return;
    }
    if (turn >= kTurnBytes) {  // let the other connections read too
      auto self = shared_from_this();
      asio::post(io_, [self] {
        if (!self->dead_ && !self->paused_) self->Body();
      });
      return;
    }
    const BodySpace space =
        handler_->BodySpaceFor(static_cast<size_t>(std::min<uint64_t>(body_left_, SIZE_MAX)));
    if (space.action == BodyAction::kPause) {
      paused_ = true;
      return;
    }
    if (space.action == BodyAction::kStop) {
      Finish(TransportError::kAborted, "the body was refused");
      return;
    }
    const bool lent = space.size > 0;
    if (!lent) buf_.resize(kReadChunk);
    char* into = lent ? space.data : buf_.data();
    const size_t want = static_cast<size_t>(
        std::min<uint64_t>(lent ? space.size : buf_.size(), body_left_));
    size_t got = 0;
    std::string error;
    const Io io = ReadSome(*conn_, into, want, &got, &error);
    if (lent) {
      const BodyAction a = handler_->OnBodyPlaced(got);
      body_left_ -= got;
      placed_ += got;
      if (a == BodyAction::kStop) {
        Finish(TransportError::kAborted, "the body was refused");
        return;
      }
    } else {
      pend_begin_ = 0;
      pend_end_ = got;
    }
    if (got > 0) {
      turn += got;
      last_data_ = Now();
      continue;
    }
    if (io == Io::kWantRead || io == Io::kWantWrite) {
      SetLowWater();
      Wait(io, &RangeOp::Body);
      return;
    }
    Finish(TransportError::kDropped,
           io == Io::kEof ? "the connection closed with " + std::to_string(body_left_) +
                                " bytes of the body to come"
                          : "receiving the body failed: " + error);
    return;
  }
}

void RangeOp::Complete() {
  // Bytes past the body (a server that sent more than it said): the connection is not
  // reused, since what it carries next is not known.
  if (keep_alive_ && pend_begin_ == pend_end_ && conn_ != nullptr) {
    boost::system::error_code ignored;
    timer_.cancel(ignored);
    SetLowWater();  // back to 1 (nothing is left of the body): the next answer may be short
    owner_.Keep(std::move(conn_));
  }
  Finish(TransportError::kNone, "");
}

void RangeOp::Fallback() {
  Close();
  boost::system::error_code ignored;
  timer_.cancel(ignored);
  Transport::Done done = done_;  // a copy: ours answers if the other cannot start
  auto started = owner_.other().Start(spec_, handler_, std::move(done));
  if (!started.ok()) {
    Finish(TransportError::kOther, started.status().message());
    return;
  }
  // From here on the other transport's exchange is this one: its Done is the handler's.
  dead_ = true;
  done_ = nullptr;
  owner_.Forget(this);
  inner_ = std::move(*started);
}

void RangeOp::Reconnect() {
  Close();
  reused_ = false;
  Resolve();
}

void RangeOp::Wait(Io want, Step then) {
  auto self = shared_from_this();
  conn_->socket.async_wait(
      want == Io::kWantWrite ? tcp::socket::wait_write : tcp::socket::wait_read,
      [self, then](const boost::system::error_code& ec) {
        if (self->dead_ || self->paused_) return;
        if (ec) {
          self->Finish(TransportError::kDropped, "waiting on the connection: " + ec.message());
          return;
        }
        ((*self).*then)();
      });
}

// The stall watch: wakes every stall_timeout and ends the exchange when no byte came for that
// long and it was not paused (a paused exchange is exempt, as in the contract).
void RangeOp::WatchStall() {
  timer_.expires_after(std::max<Clock::Duration>(
      Clock::Duration(0), last_data_ + spec_.stall_timeout - Now()));
  std::weak_ptr<RangeOp> weak = weak_from_this();
  timer_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->dead_) return;
    if (self->paused_) self->last_data_ = Now();
    if (Now() - self->last_data_ >= self->spec_.stall_timeout) {
      // Bytes wait below the low-water mark (a link slower than a quarter MiB per stall
      // time): no stall yet. This body is read as it comes from now on; lowering the mark
      // wakes the wait for them (tcp_set_rcvlowat).
      if (self->conn_ != nullptr && self->conn_->low_water > 1 && self->Queued() > 0) {
        self->slow_ = true;
        self->SetLowWater();
        self->last_data_ = Now();
        self->WatchStall();
        return;
      }
      self->Finish(TransportError::kTimeout,
                   "no data for " + std::to_string(self->spec_.stall_timeout.count()) + " ms");
      return;
    }
    self->WatchStall();
  });
}

// A body's reads wait for kLowWater bytes at once (SO_RCVLOWAT) while more than twice that
// is still to come, so each wake-up reads a quarter MiB or more instead of what one segment
// brought: fewer reads and wake-ups, and fewer window updates sent back (each one's
// processing, and the server's sending it releases, ran in this process's receive calls on
// loopback). Near a body's end it is 1 again, so the last bytes never wait for bytes that
// will not come (over TLS, OpenSSL holds at most 64 KiB read ahead and a record, well under
// the margin). Cold 1 GiB on loopback, 10 alternating rounds: 1.065 -> 1.030 CPU-s (512 KiB
// 1.025, 1 MiB 1.035). A link too slow to bring the mark within a stall time is read as
// before (WatchStall).
void RangeOp::SetLowWater() {
  const int want = !slow_ && body_left_ > 2 * kLowWater ? static_cast<int>(kLowWater) : 1;
  if (want == conn_->low_water) return;
  conn_->low_water = want;
  (void)::setsockopt(conn_->socket.native_handle(), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want);
}

int RangeOp::Queued() const {
  int n = 0;
  if (conn_ == nullptr || ::ioctl(conn_->socket.native_handle(), FIONREAD, &n) != 0) return 0;
  return n;
}

void RangeOp::Unpause() {
  if (inner_ != nullptr) {
    inner_->Unpause();
    return;
  }
  if (dead_ || !paused_) return;
  paused_ = false;
  last_data_ = Now();
  auto self = shared_from_this();
  asio::post(io_, [self] {
    if (!self->dead_ && !self->paused_) self->Body();
  });
}

void RangeOp::Close() {
  if (conn_ == nullptr) return;
  boost::system::error_code ignored;
  conn_->socket.close(ignored);  // pending waits end with operation_aborted
  conn_.reset();
}

bool RangeOp::End() {
  if (dead_) return false;
  dead_ = true;
  owner_.Forget(this);
  boost::system::error_code ignored;
  timer_.cancel(ignored);
  resolver_.cancel();
  if (race_ != nullptr) race_->Cancel();
  race_.reset();
  Close();
  return true;
}

void RangeOp::Stop() {
  inner_.reset();
  End();
}

void RangeOp::Finish(TransportError error, std::string detail) {
  if (!End()) return;
  ExchangeResult r;
  r.error = error;
  r.detail = std::move(detail);
  r.connections_opened = opened_;
  r.placed_bytes = placed_;
  Transport::Done done = std::move(done_);  // may destroy the handle, not this op
  done(r);
}

}  // namespace

std::unique_ptr<Transport> MakeRangeReader(asio::io_context& io, int max_connections,
                                           std::unique_ptr<Transport> other) {
  return std::make_unique<RangeReader>(io, max_connections, std::move(other));
}

}  // namespace modelsync::net
