// Exchange: one HTTP GET on one libcurl easy handle, without redirect following (internal).
//
// Headers are parsed as they arrive; when the last header of the final (non-1xx) response
// is in, the Handler decides what the body is for: the sink (kDeliver), an error or API
// buffer capped in size (kCollect), nothing (kDiscard, e.g. a redirect's body, read so the
// connection can be reused), or abort (kAbort: the connection is dropped, no byte used).
// Nothing of a response reaches Handler::OnBody before OnHeaders accepted it.
//
// Thread safety: loop thread only. Callbacks run inside curl's callbacks and so must not
// call curl.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modelsync::net {

struct ResponseHead {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  // The last value of a header, or nullopt.
  std::optional<std::string> Get(std::string_view lower_name) const;
};

// kCollect keeps up to Options::collect_cap bytes and aborts past it (API responses);
// kCollectError keeps the first 64 KiB of an error body and discards the rest.
enum class BodyUse { kDeliver, kCollect, kCollectError, kDiscard, kAbort };

class Exchange {
 public:
  class Handler {
   public:
    virtual BodyUse OnHeaders(const ResponseHead& head) = 0;
    // kDeliver bodies only. Return false to abort the transfer.
    virtual bool OnBody(const char* data, size_t n) = 0;
    // Consulted before each delivered piece: true = pause now (rate limit).
    virtual bool WantPause() { return false; }

   protected:
    ~Handler() = default;
  };

  struct Options {
    std::string url;
    std::string authorization;  // full header value, or empty
    std::string range;          // "bytes=a-b", or empty
    std::string user_agent;
    long connect_timeout_ms = 10000;
    long stall_seconds = 20;
    size_t collect_cap = 64 * 1024;  // bytes kept for kCollect
    bool accept_json = false;
    bool head = false;  // HEAD instead of GET
    std::string ca_file, ca_dir;  // trusted CAs instead of the system's ("" = system store)
    // The proxy to go through ("" = direct). libcurl never reads proxy variables itself:
    // net/proxy.h chose this one.
    std::string proxy;
    // Wait for a connection being set up to this origin instead of opening another
    // (CURLOPT_PIPEWAIT). Only for an origin known to multiplex (it answered over HTTP/2):
    // libcurl (7.88 here) parks a PIPEWAIT transfer until some other transfer ends when the
    // connection it waited for turns out to be HTTP/1.1, so the ranges of an HTTP/1.1 CDN
    // ran one at a time (curl issues 13227, 15838; net/NET.md "Connections").
    bool pipewait = false;
  };

  Exchange(Options options, Handler* handler);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  CURL* easy() const { return easy_; }
  const std::string& url() const { return options_.url; }
  const ResponseHead& head() const { return head_; }
  bool headers_done() const { return headers_done_; }
  BodyUse body_use() const { return use_; }
  const std::string& collected() const { return collected_; }
  bool collect_overflow() const { return collect_overflow_; }
  uint64_t body_bytes() const { return body_bytes_; }
  // libcurl's own words for the last failure ("SSL certificate problem: self-signed
  // certificate"), or "".
  std::string error_detail() const { return error_buffer_; }

 private:
  static size_t HeaderCb(char* data, size_t size, size_t n, void* self);
  static size_t WriteCb(char* data, size_t size, size_t n, void* self);
  size_t OnHeaderLine(std::string_view line);
  size_t OnWrite(const char* data, size_t n);
  bool FinishHeaders();

  Options options_;
  Handler* handler_;
  CURL* easy_ = nullptr;
  curl_slist* header_list_ = nullptr;
  ResponseHead head_;
  bool headers_done_ = false;
  BodyUse use_ = BodyUse::kDiscard;
  std::string collected_;
  bool collect_overflow_ = false;
  uint64_t body_bytes_ = 0;
  char error_buffer_[CURL_ERROR_SIZE] = {};
};

}  // namespace modelsync::net
