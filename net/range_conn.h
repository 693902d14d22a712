// One connection of the range reader (net/range_reader.h; internal to net/): its socket, its
// TLS session over https (OpenSSL through a socket BIO that sends with MSG_NOSIGNAL), and
// non-blocking reads and writes that say what they wait for.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"

namespace modelsync::net {

// One connection: a socket, and its TLS session over https.
struct Conn {
  explicit Conn(boost::asio::io_context& io) : socket(io) {}
  ~Conn() {
    if (ssl != nullptr) SSL_free(ssl);  // its BIO does not own the socket
  }
  boost::asio::ip::tcp::socket socket;
  SSL* ssl = nullptr;
  std::string origin;
  Clock::TimePoint idle_since;
  int low_water = 1;  // the socket's SO_RCVLOWAT (RangeOp::SetLowWater); 1 while kept
};

enum class Io { kOk, kWantRead, kWantWrite, kEof, kError };

// Reads up to n bytes into p (plain, or decrypted through c.ssl): kOk with *got > 0, or what
// it waits for (kWantRead / kWantWrite), kEof, kError with *error.
Io ReadSome(Conn& c, char* p, size_t n, size_t* got, std::string* error);
// Writes up to n bytes from p: kOk with *put, or as ReadSome.
Io WriteSome(Conn& c, const char* p, size_t n, size_t* put, std::string* error);

// OpenSSL's first queued error as text ("" when none).
std::string TlsErrorText();

// A client TLS context trusting ca_file / ca_dir (both empty: OpenSSL's default paths, which
// read SSL_CERT_FILE and SSL_CERT_DIR): TLS 1.2 or later, the peer verified, records read
// ahead. Null with *error when the CAs cannot be read.
SSL_CTX* MakeTlsContext(const std::string& ca_file, const std::string& ca_dir,
                        std::string* error);

// Starts a client TLS session on c's connected socket for host (SNI and the name checked, or
// the IP literal; ALPN http/1.1); the handshake is the caller's (SSL_do_handshake on c.ssl).
bool StartTlsSession(Conn& c, SSL_CTX* ctx, const std::string& host, std::string* error);

// Connecting to a host's addresses, Happy Eyeballs style (RFC 8305; libcurl does the same for
// the transfers it carries): the addresses in the resolver's order with the families
// interleaved (Interleaved), the next one tried once the one before failed or has not
// connected within the attempt delay, the attempts before it left running; the first to
// connect wins and the others are closed. An address that drops the SYN (a host whose IPv6
// route is broken, a dead edge) then costs the delay instead of the whole connect timeout
// and its retries. The deadline is the caller's (Cancel). One loop thread.
inline constexpr std::chrono::milliseconds kAttemptDelay{200};  // libcurl's default

// The addresses in the same order within each family, the families taking turns from the
// first address's.
std::vector<boost::asio::ip::tcp::endpoint> Interleaved(
    std::vector<boost::asio::ip::tcp::endpoint> endpoints);

// The addresses an entry "host:port:addr[,addr...]" of `resolve` (HubOptions::resolve, as
// curl's --resolve; an IPv6 address in brackets; host matched without regard to case) gives
// for host and port, in its order; nullopt when no entry is for them; empty when the entry's
// addresses do not parse.
std::optional<std::vector<boost::asio::ip::tcp::endpoint>> GivenAddresses(
    const std::vector<std::string>& resolve, const std::string& host, const std::string& port);

class ConnectRace : public std::enable_shared_from_this<ConnectRace> {
 public:
  // The connected socket (in a Conn) and which of the interleaved addresses it is; or, when
  // every attempt failed, the last error and no Conn.
  using Done = std::function<void(boost::system::error_code error, std::unique_ptr<Conn> conn,
                                  const boost::asio::ip::tcp::endpoint& endpoint)>;
  // endpoints must not be empty. done is called once, unless Cancel comes first.
  static std::shared_ptr<ConnectRace> Start(boost::asio::io_context& io,
                                            std::vector<boost::asio::ip::tcp::endpoint> endpoints,
                                            std::chrono::milliseconds attempt_delay, Done done);
  // Closes every attempt; done is not called after it.
  void Cancel();
  // Attempts started so far (sockets made).
  size_t started() const { return next_; }

  ConnectRace(boost::asio::io_context& io, std::vector<boost::asio::ip::tcp::endpoint> endpoints,
              std::chrono::milliseconds attempt_delay, Done done);

 private:
  void Launch();
  void Connected(size_t i, const boost::system::error_code& error);
  void End(boost::system::error_code error, size_t winner);

  boost::asio::io_context& io_;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
  std::vector<std::unique_ptr<Conn>> attempts_;  // by index into endpoints_
  std::chrono::milliseconds attempt_delay_;
  Done done_;
  boost::asio::steady_timer delay_;
  size_t next_ = 0;   // the next address to try
  int pending_ = 0;   // attempts still connecting
  bool over_ = false;
  boost::system::error_code last_error_;
};

}  // namespace modelsync::net
