#include "emulator/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

#include "base/fs.h"

namespace modelsync::emulator {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Waits up to ms (forever when ms <= 0) or until the peer hangs up. False when it hung up.
bool WaitUnlessHangup(int fd, int64_t ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    pollfd p{fd, POLLRDHUP, 0};
    int r = ::poll(&p, 1, 50);
    if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) return false;
    if (ms > 0 && Clock::now() >= deadline) return true;
  }
}

Response InjectedError(int status, int64_t retry_after) {
  std::string reason(http::obsolete_reason(static_cast<http::status>(status)));
  Response r =
      JsonResponse(status, {{"error", "Injected fault: " + std::to_string(status) + " " + reason}});
  r.Header("X-Error-Message", "Injected fault: " + std::to_string(status) + " " + reason);
  if (retry_after >= 0) r.Header("Retry-After", std::to_string(retry_after));
  return r;
}

// "bytes a-b/total", bent as the plan says.
std::string ContentRange(const FaultPlan& plan, const ResolvedRange& rr, uint64_t total) {
  uint64_t shift = plan.wrong_content_range == "shift" ? 1 : 0;
  uint64_t extra = plan.wrong_content_range == "total" ? 1 : 0;
  return "bytes " + std::to_string(rr.first + shift) + "-" + std::to_string(rr.last + shift) + "/" +
         std::to_string(total + extra);
}

// Alters the last hex digit of every ETag / X-Linked-Etag value.
void CorruptEtags(Response& resp) {
  for (auto& [k, v] : resp.headers) {
    if (!beast::iequals(k, "ETag") && !beast::iequals(k, "X-Linked-Etag")) continue;
    size_t pos = v.find_last_of("0123456789abcdef");
    if (pos != std::string::npos) v[pos] = v[pos] == '0' ? '1' : '0';
  }
}

// Drops every ETag / X-Linked-Etag header, as some caching proxies do.
void StripEtags(Response& resp) {
  auto& h = resp.headers;
  h.erase(std::remove_if(h.begin(), h.end(),
                         [](const auto& kv) {
                           return beast::iequals(kv.first, "ETag") ||
                                  beast::iequals(kv.first, "X-Linked-Etag");
                         }),
          h.end());
}

struct SendOutcome {
  int status = 0;
  uint64_t body_bytes = 0;
  bool closed = false;   // connection must be closed (dropped, peer gone, error)
  bool dropped = false;  // closed on purpose by a fault
};

// Sends [first, first+len) of the body, read through `read`, applying the plan's body faults.
// `file_offset_base` maps body offsets to file offsets (for flip_byte_at).
template <typename ReadFn>
void SendSlow(int sock, uint64_t len, uint64_t first, const FaultPlan& plan, ReadFn read,
              SendOutcome* out) {
  std::vector<char> buf(1 << 20);
  size_t chunk_cap = buf.size();
  if (plan.throttle_bps > 0)
    chunk_cap = static_cast<size_t>(std::clamp<int64_t>(plan.throttle_bps / 20, 1, 1 << 16));
  auto start = Clock::now();
  bool stalled = false;
  uint64_t sent = 0;
  while (sent < len) {
    if (plan.drop_after_bytes >= 0 && sent >= static_cast<uint64_t>(plan.drop_after_bytes)) {
      out->dropped = out->closed = true;
      break;
    }
    if (!stalled && plan.stall_after_bytes >= 0 &&
        sent >= static_cast<uint64_t>(plan.stall_after_bytes)) {
      stalled = true;
      if (!WaitUnlessHangup(sock, plan.stall_ms)) {
        out->closed = true;
        break;
      }
      start = Clock::now() - std::chrono::microseconds(
                                 plan.throttle_bps > 0 ? sent * 1000000 / plan.throttle_bps : 0);
    }
    uint64_t n = std::min<uint64_t>(len - sent, chunk_cap);
    if (plan.drop_after_bytes >= 0) n = std::min<uint64_t>(n, plan.drop_after_bytes - sent);
    if (!stalled && plan.stall_after_bytes >= 0)
      n = std::min<uint64_t>(n, plan.stall_after_bytes - sent);
    if (n == 0) continue;
    if (!read(first + sent, buf.data(), static_cast<size_t>(n))) {
      out->closed = true;
      break;
    }
    if (plan.flip_byte_at >= 0) {
      uint64_t at = static_cast<uint64_t>(plan.flip_byte_at);
      if (at >= first + sent && at < first + sent + n)
        buf[at - first - sent] ^= static_cast<char>(0xff);
    }
    if (!SendAll(sock, buf.data(), static_cast<size_t>(n))) {
      out->closed = true;
      break;
    }
    sent += n;
    out->body_bytes = sent;
    if (plan.throttle_bps > 0) {
      auto due = start + std::chrono::microseconds(sent * 1000000 /
                                                   static_cast<uint64_t>(plan.throttle_bps));
      std::this_thread::sleep_until(due);
    }
  }
}

SendOutcome SendResponse(int sock, const Request& req, Response& resp, const FaultPlan& plan,
                         bool keep_alive) {
  SendOutcome out;
  UniqueFd file;
  uint64_t first = 0, len = resp.body.size();
  if (!resp.file.empty()) {
    file = UniqueFd(::open(resp.file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file.valid()) {
      resp = JsonResponse(500, {{"error", "emulator cannot open object " + resp.file}});
    } else {
      uint64_t total = resp.file_size;
      len = total;
      ResolvedRange rr;
      RangeKind kind = RangeKind::kNone;
      if (!req.range.empty() && !plan.ignore_range && !plan.gzip)
        kind = ParseRange(req.range, total, &rr);
      resp.Header("Accept-Ranges", "bytes");
      if (kind == RangeKind::kOk && resp.status == 200) {
        resp.status = 206;
        first = rr.first;
        len = rr.last - rr.first + 1;
        resp.Header("Content-Range", ContentRange(plan, rr, total));
      } else if (kind == RangeKind::kUnsatisfiable) {
        resp.status = 416;
        len = 0;
        resp.file.clear();
        resp.body.clear();
        resp.Header("Content-Range", "bytes */" + std::to_string(total));
      }
    }
  }
  if (resp.file.empty()) {
    len = resp.body.size();
    first = 0;
    ResolvedRange rr;
    RangeKind kind = RangeKind::kNone;
    if (resp.ranged_body) {
      resp.Header("Accept-Ranges", "bytes");
      if (!req.range.empty() && !plan.ignore_range && !plan.gzip)
        kind = ParseRange(req.range, len, &rr);
    }
    std::string total = std::to_string(resp.body.size());
    if (kind == RangeKind::kOk && resp.status == 200) {
      resp.status = 206;
      resp.Header("Content-Range", ContentRange(plan, rr, resp.body.size()));
      resp.body = resp.body.substr(rr.first, rr.last - rr.first + 1);
      len = resp.body.size();
    } else if (kind == RangeKind::kUnsatisfiable) {
      resp.status = 416;
      resp.body.clear();
      len = 0;
      resp.Header("Content-Range", "bytes */" + total);
    }
  }
  if (plan.gzip && resp.status == 200 && req.method != "HEAD") {
    // Like a CDN compressing on the fly: whole body, gzip, chunked, no Content-Length.
    std::string plain = resp.body;
    if (!resp.file.empty()) {
      plain.assign(static_cast<size_t>(std::min<uint64_t>(resp.file_size, 256u << 20)), '\0');
      ssize_t n = ::pread(file.get(), plain.data(), plain.size(), 0);
      plain.resize(n > 0 ? static_cast<size_t>(n) : 0);
      resp.file.clear();
    }
    resp.body = Gzip(plain);
    resp.chunked = true;
    resp.Header("Content-Encoding", "gzip");
    len = resp.body.size();
    first = 0;
  }
  std::string head = "HTTP/1.1 " + std::to_string(resp.status) + " " +
                     std::string(http::obsolete_reason(static_cast<http::status>(resp.status))) +
                     "\r\n";
  for (const auto& [k, v] : resp.headers) head += k + ": " + v + "\r\n";
  if (resp.chunked) {
    head += "Transfer-Encoding: chunked\r\n";
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", resp.body.size());
    resp.body = size_line + resp.body + "\r\n0\r\n\r\n";
    len = resp.body.size();
  } else {
    head += "Content-Length: " + std::to_string(len) + "\r\n";
  }
  head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out.status = resp.status;
  bool send_body = req.method != "HEAD" && len > 0;
  if (!send_body || (resp.file.empty() && !plan.TouchesBody())) {
    if (send_body) head += resp.body;
    if (!SendAll(sock, head.data(), head.size())) out.closed = true;
    if (send_body && !out.closed) out.body_bytes = len;
    return out;
  }
  if (!SendAll(sock, head.data(), head.size())) {
    out.closed = true;
    return out;
  }
  if (!resp.file.empty() && !plan.TouchesBody()) {
    off_t off = static_cast<off_t>(first);
    uint64_t left = len;
    while (left > 0) {
      ssize_t n = ::sendfile(sock, file.get(), &off, std::min<uint64_t>(left, 1u << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        out.closed = true;
        break;
      }
      left -= static_cast<uint64_t>(n);
      out.body_bytes += static_cast<uint64_t>(n);
    }
    return out;
  }
  if (!resp.file.empty()) {
    int fd = file.get();
    SendSlow(
        sock, len, first, plan,
        [fd](uint64_t off, char* dst, size_t n) {
          size_t got = 0;
          while (got < n) {
            ssize_t r = ::pread(fd, dst + got, n - got, static_cast<off_t>(off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return false;
            got += static_cast<size_t>(r);
          }
          return true;
        },
        &out);
  } else {
    const std::string& body = resp.body;
    SendSlow(
        sock, len, 0, plan,
        [&body](uint64_t off, char* dst, size_t n) {
          std::memcpy(dst, body.data() + off, n);
          return true;
        },
        &out);
  }
  return out;
}

}  // namespace

struct Server::Impl {
  explicit Impl(HubApp& a) : app(a) {}
  HubApp& app;
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;

  // epoch: HubApp::epoch() when the connection was accepted.
  void Serve(tcp::socket sock, Listener which, uint64_t epoch);
};

void Server::Impl::Serve(tcp::socket sock, Listener which, uint64_t epoch) {
  beast::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  int fd = sock.native_handle();
  beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(1 << 20);
    parser.body_limit(64 << 20);
    http::read_header(sock, buf, parser, ec);
    if (ec) break;
    auto expect = parser.get()[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!SendAll(fd, kContinue, sizeof kContinue - 1)) break;
    }
    if (!parser.is_done()) http::read(sock, buf, parser, ec);
    if (ec) break;
    const auto& m = parser.get();
    Request req;
    req.listener = which;
    req.method = std::string(m.method_string());
    req.target = std::string(m.target());
    size_t q = req.target.find('?');
    req.raw_path = req.target.substr(0, q);
    req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
    req.path = PercentDecode(req.raw_path);
    req.params = ParseQuery(req.query);
    req.range = std::string(m[http::field::range]);
    auto auth = m.find(http::field::authorization);
    req.has_authorization = auth != m.end();
    if (req.has_authorization) {
      std::string v(auth->value());
      if (v.rfind("Bearer ", 0) == 0) req.bearer = v.substr(7);
    }
    req.content_type = std::string(m[http::field::content_type]);
    req.body = m.body();
    bool keep = m.keep_alive();
    bool control = which == Listener::kHub && req.raw_path.rfind("/_emulator/", 0) == 0;
    // A connection from before the last reset (an earlier test's): closed unserved.
    if (!control && epoch != app.epoch()) break;
    FaultPlan plan;
    if (!control) plan = app.faults().Plan(which, req.method, req.path);
    if (plan.latency_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(plan.latency_ms));
    Response resp = plan.status ? InjectedError(*plan.status, plan.retry_after) : app.Handle(req);
    if (plan.bad_etag) CorruptEtags(resp);
    if (plan.strip_etag) StripEtags(resp);
    if (!control) app.recorder().BeginSend();
    SendOutcome out = SendResponse(fd, req, resp, plan, keep);
    if (!control) {
      LogEntry e;
      e.listener = which;
      e.method = req.method;
      e.path = req.path;
      e.target = req.target;
      e.range = req.range;
      e.status = out.status;
      e.authorization = req.has_authorization;
      e.body_bytes = out.body_bytes;
      e.dropped = out.dropped;
      e.injected = plan.any;
      if (epoch == app.epoch()) app.recorder().Record(std::move(e));
      app.recorder().EndSend();
    }
    if (out.closed || !keep) break;
  }
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

Server::Server(HubApp& app) : impl_(std::make_unique<Impl>(app)) {}
Server::~Server() = default;

Result<uint16_t> Server::Listen(Listener which, const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("bad listen address '" + host + "': " + ec.message());
  auto acc = std::make_unique<tcp::acceptor>(impl_->io);
  tcp::endpoint ep(addr, port);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                           ec.message() + " (is another emulator running on that port?)");
  }
  uint16_t bound = acc->local_endpoint().port();
  tcp::acceptor* a = acc.get();
  impl_->acceptors.push_back(std::move(acc));
  Impl* impl = impl_.get();
  std::thread([impl, a, which] {
    for (;;) {
      beast::error_code aec;
      tcp::socket s(impl->io);
      a->accept(s, aec);
      if (aec) {
        if (aec == asio::error::operation_aborted || aec == asio::error::bad_descriptor) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      const uint64_t epoch = impl->app.epoch();
      std::thread([impl, which, epoch](tcp::socket sock) {
        impl->Serve(std::move(sock), which, epoch);
      }, std::move(s))
          .detach();
    }
  }).detach();
  return bound;
}

}  // namespace modelsync::emulator
