// One connection of the range reader (net/range_reader.h; internal to net/): its socket, its
// TLS session over https (OpenSSL through a socket BIO that sends with MSG_NOSIGNAL), and
// non-blocking reads and writes that say what they wait for.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <string>

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

}  // namespace modelsync::net
