#include "net/curl_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "base/strings.h"
#include "net/curl_multi.h"
#include "net/range_reader.h"

namespace modelsync::net {
namespace {

// libcurl's receive buffer, one per transfer: 512 KiB per read means fewer write callbacks
// (and sink calls) per byte (256 KiB costs ~5 % more CPU on a loopback pull), but every
// transfer holds one, and a paused transfer a copy of what it could not deliver. So the
// transfers running together share kBuffersTotal: 512 KiB each up to 8 (a loopback pull),
// 256 KiB each at 16 (a slow link, where the governor opens more), never under 128 KiB.
constexpr long kBufferMax = 512 * 1024, kBufferMin = 128 * 1024;
constexpr long kBuffersTotal = 4 * 1024 * 1024;
// A range of under kBufferSmall bytes (a small file's fetch) gets a buffer of libcurl's
// default size instead: a 512 KiB buffer per small request costs an allocation and page
// faults for bytes that never come.
constexpr long kBufferSmall = 16 * 1024;
long BufferFor(size_t transfers, uint64_t range_bytes) {
  if (range_bytes > 0 && range_bytes < static_cast<uint64_t>(kBufferSmall)) return kBufferSmall;
  const long share = kBuffersTotal / static_cast<long>(std::max<size_t>(1, transfers));
  return std::clamp(share, kBufferMin, kBufferMax);
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

TransportError Classify(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return TransportError::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
      return TransportError::kResolve;
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::kProxyResolve;
    case CURLE_COULDNT_CONNECT:
      return TransportError::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_AGAIN:
      return TransportError::kDropped;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTls;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return TransportError::kBadUrl;
    default:
      return TransportError::kOther;
  }
}

class CurlExchange final : public Transport::Exchange, public CurlMulti::Owner {
 public:
  CurlExchange(CurlMulti& multi, const ExchangeSpec& spec, ExchangeHandler* handler,
               Transport::Done done, long buffer_size)
      : multi_(multi), handler_(handler), done_(std::move(done)), url_(spec.url) {
    easy_ = curl_easy_init();
    if (easy_ == nullptr) return;
    curl_easy_setopt(easy_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);
    if (spec.head) curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are the Request's
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    // Through an HTTPS proxy, the CONNECT answer is not the hub's response: keep it out of
    // the header parser.
    curl_easy_setopt(easy_, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(easy_, CURLOPT_BUFFERSIZE, buffer_size);
    // HTTP/2 over TLS where the server offers it, except for an exchange that wants its own
    // connection: HTTP/1.1 then, which libcurl never puts on a multiplexed connection.
    curl_easy_setopt(easy_, CURLOPT_HTTP_VERSION,
                     static_cast<long>(spec.own_connection ? CURL_HTTP_VERSION_1_1
                                                           : CURL_HTTP_VERSION_2TLS));
    // PIPEWAIT only where the origin is known to multiplex: libcurl (7.88) parks a PIPEWAIT
    // transfer until some other transfer ends when the connection it waited for turns out to
    // be HTTP/1.1 (curl issues 13227, 15838; net/NET.md "Connections").
    curl_easy_setopt(easy_, CURLOPT_PIPEWAIT, spec.pipewait ? 1L : 0L);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(spec.connect_timeout.count()));
    // Stall detection: fewer than 1 byte/s for the stall time (whole seconds, rounded up)
    // aborts with CURLE_OPERATION_TIMEDOUT. A paused transfer is exempt in libcurl.
    const long stall_s = static_cast<long>((spec.stall_timeout.count() + 999) / 1000);
    curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME, std::max(1L, stall_s));
    curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &CurlExchange::HeaderCb);
    curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &CurlExchange::WriteCb);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer_);
    // Always set: an empty proxy disables libcurl's own reading of http_proxy & co., and an
    // empty no-proxy list its reading of NO_PROXY (ChooseProxy applied it already).
    curl_easy_setopt(easy_, CURLOPT_PROXY, spec.proxy.c_str());
    curl_easy_setopt(easy_, CURLOPT_NOPROXY, "");
    if (!spec.ca_file.empty()) curl_easy_setopt(easy_, CURLOPT_CAINFO, spec.ca_file.c_str());
    if (!spec.ca_dir.empty()) curl_easy_setopt(easy_, CURLOPT_CAPATH, spec.ca_dir.c_str());
    if (!spec.user_agent.empty()) {
      curl_easy_setopt(easy_, CURLOPT_USERAGENT, spec.user_agent.c_str());
    }
    if (!spec.authorization.empty()) {
      headers_ = curl_slist_append(headers_, ("Authorization: " + spec.authorization).c_str());
    }
    if (!spec.range.empty()) {
      headers_ = curl_slist_append(headers_, ("Range: " + spec.range).c_str());
    }
    if (spec.accept_json) {
      headers_ = curl_slist_append(headers_, "Accept: application/json");
      // Every encoding this libcurl decodes (gzip, deflate, br, zstd), decoded for us.
      curl_easy_setopt(easy_, CURLOPT_ACCEPT_ENCODING, "");
    }
    if (headers_ != nullptr) curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    for (const std::string& r : spec.resolve) resolve_ = curl_slist_append(resolve_, r.c_str());
    if (resolve_ != nullptr) curl_easy_setopt(easy_, CURLOPT_RESOLVE, resolve_);
  }

  ~CurlExchange() override {
    if (easy_ != nullptr) {
      multi_.Remove(easy_);
      curl_easy_cleanup(easy_);
    }
    curl_slist_free_all(headers_);
    curl_slist_free_all(resolve_);
  }

  CURL* easy() const { return easy_; }

  void Unpause() override {
    if (easy_ != nullptr) multi_.Unpause(easy_);
  }

 private:
  static size_t HeaderCb(char* data, size_t size, size_t n, void* self) {
    return static_cast<CurlExchange*>(self)->OnHeaderLine(std::string_view(data, size * n));
  }
  static size_t WriteCb(char* data, size_t size, size_t n, void* self) {
    return static_cast<CurlExchange*>(self)->OnWrite(data, size * n);
  }

  size_t OnHeaderLine(std::string_view line) {
    const size_t consumed = line.size();
    if (head_done_) return consumed;  // trailers
    if (line.substr(0, 5) == "HTTP/") {
      head_ = ResponseHead();
      size_t sp = line.find(' ');
      if (sp != std::string_view::npos) head_.status = std::strtol(line.data() + sp + 1, nullptr, 10);
      return consumed;
    }
    std::string_view t = TrimSpace(line);
    if (t.empty()) {
      if (head_.status >= 100 && head_.status < 200) return consumed;  // wait for the final one
      return FinishHead() ? consumed : 0;
    }
    size_t colon = t.find(':');
    if (colon == std::string_view::npos) return consumed;
    head_.headers.emplace_back(AsciiLower(t.substr(0, colon)), std::string(TrimSpace(t.substr(colon + 1))));
    return consumed;
  }

  bool FinishHead() {
    head_done_ = true;
    if (!handler_->OnHead(head_)) aborted_ = true;
    return !aborted_;
  }

  size_t OnWrite(const char* data, size_t n) {
    if (!head_done_ && !FinishHead()) return 0;
    if (aborted_) return 0;
    switch (handler_->OnBody(data, n)) {
      case BodyAction::kTaken:
        return n;
      case BodyAction::kPause:
        return CURL_WRITEFUNC_PAUSE;
      case BodyAction::kStop:
        aborted_ = true;
        return 0;
    }
    return 0;
  }

  void OnTransferDone(CURL* easy, CURLcode code) override {
    ExchangeResult r;
    r.code = code;
    r.error = Classify(code);
    if (aborted_ && r.error != TransportError::kNone) r.error = TransportError::kAborted;
    if (code != CURLE_OK) r.detail = error_buffer_[0] != 0 ? error_buffer_ : curl_easy_strerror(code);
    long opened = 0;
    if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &opened) == CURLE_OK && opened > 0) {
      r.connections_opened = static_cast<uint64_t>(opened);
    }
    long version = 0;
    r.multiplexed = curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK &&
                    version >= CURL_HTTP_VERSION_2_0;
    long connect_code = 0;
    if (curl_easy_getinfo(easy, CURLINFO_HTTP_CONNECTCODE, &connect_code) == CURLE_OK) {
      r.proxy_connect_status = connect_code;
    }
    // May destroy this exchange: nothing of it is touched afterwards.
    Transport::Done done = std::move(done_);
    done(r);
  }

  CurlMulti& multi_;
  ExchangeHandler* handler_;
  Transport::Done done_;
  std::string url_;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
  curl_slist* resolve_ = nullptr;  // CURLOPT_RESOLVE's entries
  ResponseHead head_;
  bool head_done_ = false;
  bool aborted_ = false;
  char error_buffer_[CURL_ERROR_SIZE] = {};
};

class CurlTransport final : public Transport {
 public:
  CurlTransport(boost::asio::io_context& io, int max_connections) : multi_(io, max_connections) {}

  Result<std::unique_ptr<Exchange>> Start(const ExchangeSpec& spec, ExchangeHandler* handler,
                                          Done done) override {
    auto ex = std::make_unique<CurlExchange>(multi_, spec, handler, std::move(done),
                                             BufferFor(multi_.live() + 1, spec.range_bytes));
    if (ex->easy() == nullptr) return Status::Permanent("cannot start a transfer: curl_easy_init failed");
    CURLMcode rc = multi_.Add(ex->easy(), ex.get());
    if (rc != CURLM_OK) {
      return Status::Permanent(std::string("cannot start a transfer: ") + curl_multi_strerror(rc));
    }
    return std::unique_ptr<Exchange>(std::move(ex));
  }

  void Shutdown() override { multi_.Shutdown(); }

 private:
  CurlMulti multi_;
};

class CurlFactory final : public TransportFactory {
 public:
  std::unique_ptr<Transport> Make(boost::asio::io_context& loop, int max_connections) override {
    return MakeCurlTransport(loop, max_connections);
  }
};

}  // namespace

std::unique_ptr<Transport> MakeCurlTransport(boost::asio::io_context& io, int max_connections) {
  static CurlGlobal global;
  // Long ranges are received in place by the range reader; everything else is libcurl's.
  return MakeRangeReader(io, max_connections, std::make_unique<CurlTransport>(io, max_connections));
}

std::shared_ptr<TransportFactory> CurlTransportFactory() {
  static auto factory = std::make_shared<CurlFactory>();
  return factory;
}

}  // namespace modelsync::net
