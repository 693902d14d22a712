// Transport: what carries the hub client's HTTP exchanges (issue 14's seam; net/NET.md
// "The transport"). libcurl is the real one (net/curl_transport.h); an app may plug its own
// (on iOS a background URLSession) through HubOptions::transport, and engine::Env::transport.
//
// A transport moves one exchange at a time per Start(): one GET (or HEAD) of one URL with the
// given headers, without following redirects, over whatever connections it keeps. Everything
// that makes modelsync's downloads trustworthy stays above it, in Request and Hub, and so holds
// for any transport: which redirects to follow and where the token may go, the identity
// checks before a body byte is used, retries with backoff, resuming a dropped range from the
// next byte, the rate limit, the size cap of API answers. (Connect timeouts and stall
// detection are the transport's own: see the contract.)
//
// Contract (a transport that breaks it breaks those guarantees):
//  - Every ExchangeHandler call and the Done callback run on the Hub's loop thread (the
//    io_context the factory was given): post to it from any other thread.
//  - OnHead is called once, with the final (non-1xx) response, before any body byte; false
//    aborts the exchange without reading the body.
//  - OnBody gets the body in order, each byte once. kPause: the piece was not taken; stop
//    delivering and deliver the same bytes again after Exchange::Unpause(). kStop: abort.
//  - Done is called exactly once, last, unless the Exchange handle was destroyed first (that
//    stops the exchange at once, with no callback). It may destroy the handle.
//  - Start() never calls the handler or Done itself (it returns first: post them). Unpause()
//    may deliver, and even end the exchange, before it returns.
//  - A body that stops arriving for stall_timeout ends the exchange with kTimeout, unless it
//    is paused; one that ends early (connection reset, short body) with kDropped.
//
// Thread safety: Start/Unpause/Shutdown and the handle's destructor are called on the loop
// thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace boost::asio {
class io_context;
}

namespace modelsync::net {

struct ResponseHead {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  // The last value of a header, or nullopt.
  std::optional<std::string> Get(std::string_view lower_name) const;
};

// One exchange as the hub client asks for it.
struct ExchangeSpec {
  std::string url;
  std::string authorization;  // full Authorization header value, or empty
  std::string range;          // Range header value ("bytes=a-b"), or empty
  uint64_t range_bytes = 0;   // how many bytes `range` asks for (0: no range); sizes buffers
  std::string user_agent;
  bool head = false;          // HEAD instead of GET
  // Accept: application/json, and any Content-Encoding the transport can decode (API answers
  // only; a file body is never decoded: its bytes are hashed as stored).
  bool accept_json = false;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds stall_timeout{20000};  // no body byte for this long: kTimeout
  std::string ca_file, ca_dir;  // trusted CAs instead of the system store ("" = system)
  std::string proxy;            // the proxy to go through (net/proxy.h chose it), "" = direct
  std::vector<std::string> resolve;  // HubOptions::resolve: "host:port:addr[,addr...]"
  // Wait for a connection being set up to this origin rather than open another: only asked
  // for an origin that answered over HTTP/2 (ExchangeResult::multiplexed).
  bool pipewait = false;
  // Carry this exchange on a connection of its own, not multiplexed with others while it
  // runs (a transport that speaks HTTP/2 asks HTTP/1.1 for it). Asked for long ranges: N of
  // them at once should be N connections, so that a limit per connection (a CDN's, or one
  // TCP stream's over a far link) multiplies by N, as it does for aria2c -xN; on one HTTP/2
  // connection N ranges share one (net/NET.md "Connections").
  bool own_connection = false;
};

enum class BodyAction { kTaken, kPause, kStop };

// Memory a handler lends for the next body bytes (ExchangeHandler::BodySpace).
struct BodySpace {
  char* data = nullptr;
  size_t size = 0;  // 0: no memory lent (deliver through OnBody), or `action` says why not
  BodyAction action = BodyAction::kTaken;  // kPause / kStop: as OnBody's answers
};

class ExchangeHandler {
 public:
  virtual bool OnHead(const ResponseHead& head) = 0;
  virtual BodyAction OnBody(const char* data, size_t n) = 0;
  // Receiving in place (optional, for a transport that reads its socket itself: the range
  // reader, net/range_reader.h). Memory for up to `want` of the next body bytes, so they can
  // be received straight into it instead of being copied out of the transport's buffer.
  // size 0 with kTaken: deliver them through OnBody instead; kPause / kStop as OnBody's.
  // Every BodySpace that lends memory is followed by exactly one OnBodyPlaced(n), n <= size
  // (0: nothing came), before any other call to the handler and before the loop turn ends:
  // the memory is the handler's again after it. OnBodyPlaced answers as OnBody does.
  virtual BodySpace BodySpaceFor(size_t want) {
    (void)want;
    return {};
  }
  virtual BodyAction OnBodyPlaced(size_t n) {
    (void)n;
    return BodyAction::kStop;
  }

 protected:
  ~ExchangeHandler() = default;
};

// How an exchange failed below HTTP. The Request decides from it whether to retry and what
// to tell the user (net/errors.h MapTransportError).
enum class TransportError {
  kNone,          // an HTTP answer came whole
  kResolve,       // the host's name did not resolve
  kProxyResolve,  // the proxy's name did not resolve
  kConnect,       // no connection (refused, unreachable; through a proxy: to the proxy)
  kTimeout,       // connecting took too long, or the body stalled
  kDropped,       // the connection broke mid-exchange (reset, short body, HTTP/2 stream error,
                  // a reply that is not HTTP)
  kTls,           // TLS handshake or certificate failure
  kBadUrl,        // a URL or scheme the transport cannot use
  kAborted,       // the handler said stop (OnHead false, kStop)
  kOther,         // anything else (not retried)
};

struct ExchangeResult {
  TransportError error = TransportError::kNone;
  long code = 0;        // the transport's own code (a CURLcode), kept as the Status detail
  std::string detail;   // the transport's words for a failure ("self-signed certificate")
  long proxy_connect_status = 0;  // a proxy's answer to CONNECT (>= 300: refused), 0 = none
  bool multiplexed = false;       // answered over HTTP/2 or later
  uint64_t connections_opened = 0;
  uint64_t placed_bytes = 0;      // body bytes received in place (BodySpaceFor)
};

class Transport {
 public:
  class Exchange {
   public:
    virtual ~Exchange() = default;  // stops the exchange if it still runs (no Done)
    // Resumes delivery after OnBody answered kPause (the same bytes come again).
    virtual void Unpause() = 0;
  };
  using Done = std::function<void(const ExchangeResult&)>;

  virtual ~Transport() = default;
  // Starts an exchange. A transport that cannot start one at all returns an error (the
  // request fails with it, kPermanent).
  virtual Result<std::unique_ptr<Exchange>> Start(const ExchangeSpec& spec,
                                                  ExchangeHandler* handler, Done done) = 0;
  // Ends every exchange (no Done) and closes every connection while the loop still runs.
  // Called once, before the loop stops; no Start() after it.
  virtual void Shutdown() = 0;
};

// Makes a Hub's transport, once per Hub, on the Hub's thread's io_context. Thread-safe.
class TransportFactory {
 public:
  virtual ~TransportFactory() = default;
  virtual std::unique_ptr<Transport> Make(boost::asio::io_context& loop, int max_connections) = 0;
};

// The real one: libcurl's multi interface on the loop (net/curl_transport.h).
std::shared_ptr<TransportFactory> CurlTransportFactory();

}  // namespace modelsync::net
