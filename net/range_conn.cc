#include "net/range_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unistd.h>

#include "base/platform.h"
#include "base/strings.h"

namespace modelsync::net {
namespace {

bool IsIpLiteral(const std::string& host) {
  in_addr a4{};
  in6_addr a6{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// OpenSSL's reads and writes go through a socket BIO of our own: send() never raises SIGPIPE
// on a closed peer (base/platform.h SendNoSignal), which OpenSSL's socket BIO's write() does.
int BioFd(BIO* b) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b))); }

int BioWrite(BIO* b, const char* data, int n) {
  BIO_clear_retry_flags(b);
  const ssize_t w = platform::SendNoSignal(BioFd(b), data, static_cast<size_t>(n));
  if (w >= 0) return static_cast<int>(w);
  if (w == -EAGAIN || w == -EWOULDBLOCK || w == -EINTR) BIO_set_retry_write(b);
  errno = static_cast<int>(-w);
  return -1;
}

int BioRead(BIO* b, char* out, int n) {
  BIO_clear_retry_flags(b);
  const ssize_t r = ::recv(BioFd(b), out, static_cast<size_t>(n), 0);
  if (r >= 0) return static_cast<int>(r);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
  return -1;
}

long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "modelsync socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, BioCreate);
    return m;
  }();
  return method;
}

}  // namespace

std::string TlsErrorText() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Io ReadSome(Conn& c, char* p, size_t n, size_t* got, std::string* error) {
  *got = 0;
  if (c.ssl == nullptr) {
    for (;;) {
      const ssize_t r = ::recv(c.socket.native_handle(), p, n, 0);
      if (r > 0) {
        *got = static_cast<size_t>(r);
        return Io::kOk;
      }
      if (r == 0) return Io::kEof;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::kWantRead;
      *error = std::strerror(errno);
      return Io::kError;
    }
  }
  ERR_clear_error();
  if (SSL_read_ex(c.ssl, p, n, got) == 1) return Io::kOk;
  const int e = SSL_get_error(c.ssl, 0);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kEof;
    case SSL_ERROR_SYSCALL:
      if (errno == 0 && ERR_peek_error() == 0) return Io::kEof;
      *error = errno != 0 ? std::strerror(errno) : TlsErrorText();
      return Io::kError;
    default:
      *error = "TLS: " + TlsErrorText();
      return Io::kError;
  }
}

Io WriteSome(Conn& c, const char* p, size_t n, size_t* put, std::string* error) {
  *put = 0;
  if (c.ssl == nullptr) {
    const ssize_t w = platform::SendNoSignal(c.socket.native_handle(), p, n);
    if (w >= 0) {
      *put = static_cast<size_t>(w);
      return Io::kOk;
    }
    if (w == -EAGAIN || w == -EWOULDBLOCK || w == -EINTR) return Io::kWantWrite;
    *error = std::strerror(static_cast<int>(-w));
    return Io::kError;
  }
  ERR_clear_error();
  if (SSL_write_ex(c.ssl, p, n, put) == 1) return Io::kOk;
  switch (SSL_get_error(c.ssl, 0)) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    default:
      *error = errno != 0 ? std::strerror(errno) : "TLS: " + TlsErrorText();
      return Io::kError;
  }
}

SSL_CTX* MakeTlsContext(const std::string& ca_file, const std::string& ca_dir,
                        std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = "cannot make a TLS context: " + TlsErrorText();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);  // a body's end is its length
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Records read ahead, 64 KiB at a time: one recv for several records instead of two for
  // each (its header, then its body). Safe here as it is not under libcurl (whose loop asks
  // SSL_pending, blind to bytes read ahead): this reader reads until OpenSSL wants the socket,
  // and only then waits on it. Scenario 9's set-up, 8 alternating rounds: 1.685 -> 1.560
  // CPU-s (32 KiB 1.575, 128 KiB 1.615).
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
  ERR_clear_error();
  const int loaded =
      ca_file.empty() && ca_dir.empty()
          ? SSL_CTX_set_default_verify_paths(ctx)
          : SSL_CTX_load_verify_locations(ctx, ca_file.empty() ? nullptr : ca_file.c_str(),
                                          ca_dir.empty() ? nullptr : ca_dir.c_str());
  if (loaded != 1) {
    *error = "cannot read the trusted certificates" +
             (ca_file.empty() ? std::string() : " in " + ca_file) +
             (ca_dir.empty() ? std::string() : " in " + ca_dir) + " (" + TlsErrorText() + ")";
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

bool StartTlsSession(Conn& c, SSL_CTX* ctx, const std::string& host, std::string* error) {
  SSL* ssl = SSL_new(ctx);
  BIO* bio = BIO_new(SocketBioMethod());
  if (ssl == nullptr || bio == nullptr) {
    if (ssl != nullptr) SSL_free(ssl);
    if (bio != nullptr) BIO_free(bio);
    *error = "cannot start a TLS session: " + TlsErrorText();
    return false;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(c.socket.native_handle())));
  SSL_set_bio(ssl, bio, bio);
  c.ssl = ssl;
  SSL_set_connect_state(ssl);
  // The certificate must name the host (or its address), as libcurl checks it.
  if (IsIpLiteral(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));  // SSL_set_tlsext_host_name
    SSL_set1_host(ssl, host.c_str());
  }
  static const unsigned char kAlpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(ssl, kAlpn, sizeof kAlpn - 1);
  return true;
}

std::optional<std::vector<boost::asio::ip::tcp::endpoint>> GivenAddresses(
    const std::vector<std::string>& resolve, const std::string& host, const std::string& port) {
  const std::string key = AsciiLower(host + ":" + port + ":");
  for (const std::string& entry : resolve) {
    if (AsciiLower(entry.substr(0, key.size())) != key) continue;
    std::vector<boost::asio::ip::tcp::endpoint> out;
    const auto port_number = static_cast<unsigned short>(std::atoi(port.c_str()));
    std::string_view rest = std::string_view(entry).substr(key.size());
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view addr = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']')
        addr = addr.substr(1, addr.size() - 2);
      boost::system::error_code ec;
      const auto a = boost::asio::ip::make_address(std::string(addr), ec);
      if (ec) return std::vector<boost::asio::ip::tcp::endpoint>();
      out.emplace_back(a, port_number);
    }
    return out;
  }
  return std::nullopt;
}

std::vector<boost::asio::ip::tcp::endpoint> Interleaved(
    std::vector<boost::asio::ip::tcp::endpoint> endpoints) {
  if (endpoints.empty()) return endpoints;
  const bool first_v6 = endpoints.front().address().is_v6();
  std::vector<boost::asio::ip::tcp::endpoint> same, other, out;
  for (auto& e : endpoints) (e.address().is_v6() == first_v6 ? same : other).push_back(e);
  for (size_t i = 0; i < same.size() || i < other.size(); ++i) {
    if (i < same.size()) out.push_back(same[i]);
    if (i < other.size()) out.push_back(other[i]);
  }
  return out;
}

ConnectRace::ConnectRace(boost::asio::io_context& io,
                         std::vector<boost::asio::ip::tcp::endpoint> endpoints,
                         std::chrono::milliseconds attempt_delay, Done done)
    : io_(io),
      endpoints_(Interleaved(std::move(endpoints))),
      attempt_delay_(attempt_delay),
      done_(std::move(done)),
      delay_(io) {
  attempts_.resize(endpoints_.size());
}

std::shared_ptr<ConnectRace> ConnectRace::Start(
    boost::asio::io_context& io, std::vector<boost::asio::ip::tcp::endpoint> endpoints,
    std::chrono::milliseconds attempt_delay, Done done) {
  auto race = std::make_shared<ConnectRace>(io, std::move(endpoints), attempt_delay,
                                            std::move(done));
  race->Launch();
  return race;
}

void ConnectRace::Launch() {
  while (!over_ && next_ < endpoints_.size()) {
    const size_t i = next_++;
    const boost::asio::ip::tcp::endpoint& ep = endpoints_[i];
    const int fd = platform::SocketCloexec(ep.protocol().family(), SOCK_STREAM);
    if (fd < 0) {
      last_error_ = boost::system::error_code(-fd, boost::system::system_category());
      continue;  // this address cannot even have a socket: the next one now
    }
    auto conn = std::make_unique<Conn>(io_);
    boost::system::error_code ec;
    conn->socket.assign(ep.protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      last_error_ = ec;
      continue;
    }
    ++pending_;
    std::weak_ptr<ConnectRace> weak = weak_from_this();
    conn->socket.async_connect(ep, [weak, i](const boost::system::error_code& e) {
      if (auto self = weak.lock()) self->Connected(i, e);
    });
    attempts_[i] = std::move(conn);
    if (next_ < endpoints_.size()) {  // the next address if this one is slow to answer
      delay_.expires_after(attempt_delay_);
      delay_.async_wait([weak](const boost::system::error_code& e) {
        auto self = weak.lock();
        if (!e && self && !self->over_) self->Launch();
      });
    }
    return;
  }
  if (!over_ && pending_ == 0) End(last_error_, endpoints_.size());
}

void ConnectRace::Connected(size_t i, const boost::system::error_code& error) {
  if (over_) return;
  --pending_;
  if (error) {
    last_error_ = error;
    attempts_[i].reset();
    boost::system::error_code ignored;
    delay_.cancel(ignored);
    Launch();  // the next address at once (or the end, when none is left and none is pending)
    return;
  }
  End({}, i);
}

void ConnectRace::End(boost::system::error_code error, size_t winner) {
  over_ = true;
  boost::system::error_code ignored;
  delay_.cancel(ignored);
  std::unique_ptr<Conn> conn;
  for (size_t i = 0; i < attempts_.size(); ++i) {
    if (i == winner) {
      conn = std::move(attempts_[i]);
    } else if (attempts_[i] != nullptr) {
      attempts_[i]->socket.close(ignored);  // its pending connect ends with operation_aborted
      attempts_[i].reset();
    }
  }
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(error, std::move(conn), winner < endpoints_.size() ? endpoints_[winner] : boost::asio::ip::tcp::endpoint());
}

void ConnectRace::Cancel() {
  if (over_) return;
  done_ = nullptr;
  End({}, endpoints_.size());
}

}  // namespace modelsync::net
