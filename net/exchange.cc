#include "net/exchange.h"

#include <algorithm>
#include <cstdlib>

#include "base/strings.h"

namespace modelsync::net {
namespace {

constexpr long kBufferSize = 512 * 1024;

}  // namespace

std::optional<std::string> ResponseHead::Get(std::string_view lower_name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->first == lower_name) return it->second;
  }
  return std::nullopt;
}

Exchange::Exchange(Options options, Handler* handler)
    : options_(std::move(options)), handler_(handler) {
  easy_ = curl_easy_init();
  curl_easy_setopt(easy_, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);
  if (options_.head) curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are ours (auth, limits)
  curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
  // Through an HTTPS proxy, the CONNECT answer is not the hub's response: keep it out of
  // the header parser.
  curl_easy_setopt(easy_, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(easy_, CURLOPT_BUFFERSIZE, kBufferSize);
  curl_easy_setopt(easy_, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(easy_, CURLOPT_PIPEWAIT, options_.pipewait ? 1L : 0L);
  curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  // Stall detection: fewer than 1 byte/s for stall_seconds aborts (CURLE_OPERATION_TIMEDOUT).
  // A transfer paused by the rate limiter is exempt from this check in libcurl.
  curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME, std::max(1L, options_.stall_seconds));
  curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &Exchange::HeaderCb);
  curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &Exchange::WriteCb);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(easy_, CURLOPT_PRIVATE, this);
  curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer_);
  // Always set: an empty proxy disables libcurl's own reading of http_proxy & co., and an
  // empty no-proxy list its reading of NO_PROXY (ChooseProxy applied it already).
  curl_easy_setopt(easy_, CURLOPT_PROXY, options_.proxy.c_str());
  curl_easy_setopt(easy_, CURLOPT_NOPROXY, "");
  if (!options_.ca_file.empty()) curl_easy_setopt(easy_, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.ca_dir.empty()) curl_easy_setopt(easy_, CURLOPT_CAPATH, options_.ca_dir.c_str());
  if (!options_.user_agent.empty()) {
    curl_easy_setopt(easy_, CURLOPT_USERAGENT, options_.user_agent.c_str());
  }
  if (!options_.authorization.empty()) {
    header_list_ =
        curl_slist_append(header_list_, ("Authorization: " + options_.authorization).c_str());
  }
  if (!options_.range.empty()) {
    header_list_ = curl_slist_append(header_list_, ("Range: " + options_.range).c_str());
  }
  if (options_.accept_json) {
    header_list_ = curl_slist_append(header_list_, "Accept: application/json");
    // API answers may come compressed (a proxy, a mirror): ask for every encoding this
    // libcurl decodes (gzip, deflate, br, zstd) and get the JSON decoded. Never on file
    // bodies: their bytes are hashed as the hub stores them, and ranges count raw bytes.
    curl_easy_setopt(easy_, CURLOPT_ACCEPT_ENCODING, "");
  }
  if (header_list_ != nullptr) curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, header_list_);
}

Exchange::~Exchange() {
  curl_easy_cleanup(easy_);
  curl_slist_free_all(header_list_);
}

size_t Exchange::HeaderCb(char* data, size_t size, size_t n, void* self) {
  return static_cast<Exchange*>(self)->OnHeaderLine(std::string_view(data, size * n));
}

size_t Exchange::WriteCb(char* data, size_t size, size_t n, void* self) {
  return static_cast<Exchange*>(self)->OnWrite(data, size * n);
}

size_t Exchange::OnHeaderLine(std::string_view line) {
  const size_t consumed = line.size();
  if (headers_done_) return consumed;  // trailers
  if (line.substr(0, 5) == "HTTP/") {
    head_ = ResponseHead();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) head_.status = std::strtol(line.data() + sp + 1, nullptr, 10);
    return consumed;
  }
  std::string_view t = TrimSpace(line);
  if (t.empty()) {
    if (head_.status >= 100 && head_.status < 200) return consumed;  // wait for the final one
    return FinishHeaders() ? consumed : 0;
  }
  size_t colon = t.find(':');
  if (colon == std::string_view::npos) return consumed;
  std::string name(t.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  head_.headers.emplace_back(std::move(name), std::string(TrimSpace(t.substr(colon + 1))));
  return consumed;
}

bool Exchange::FinishHeaders() {
  headers_done_ = true;
  use_ = handler_->OnHeaders(head_);
  return use_ != BodyUse::kAbort;
}

size_t Exchange::OnWrite(const char* data, size_t n) {
  if (!headers_done_ && !FinishHeaders()) return 0;
  switch (use_) {
    case BodyUse::kDeliver:
      if (handler_->WantPause()) return CURL_WRITEFUNC_PAUSE;
      body_bytes_ += n;
      return handler_->OnBody(data, n) ? n : 0;
    case BodyUse::kCollect: {
      size_t room = options_.collect_cap - std::min(options_.collect_cap, collected_.size());
      if (n > room) collect_overflow_ = true;
      collected_.append(data, std::min(n, room));
      if (collect_overflow_) return 0;  // past the cap: stop reading
      body_bytes_ += n;
      return n;
    }
    case BodyUse::kCollectError: {
      constexpr size_t kErrorCap = 64 * 1024;
      if (collected_.size() < kErrorCap) {
        collected_.append(data, std::min(n, kErrorCap - collected_.size()));
      }
      body_bytes_ += n;
      return n;
    }
    case BodyUse::kDiscard:
      body_bytes_ += n;
      return n;
    case BodyUse::kAbort:
      return 0;
  }
  return 0;
}

}  // namespace modelsync::net
