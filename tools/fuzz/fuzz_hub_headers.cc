// libFuzzer target: the pure functions that read the hub's response headers and URLs
// (net/errors.h, net/url.h, net/transport.h). The first byte picks the function:
//   0  NormalizeEtag(ETag / X-Linked-Etag)   1  LinkNext(Link)
//   2  ParseUrl(url)                          3  ResolveLocation(base, Location)
//   4  PercentEncode(s, keep_slash)           5  ResponseHead::Get over fuzzed headers
//   6  ParseHead + ContentLength + HasToken (net/http1.h: the range reader's response heads)
// Invariants: NormalizeEtag never grows its input and gives no upper case; LinkNext returns
// a substring of the header between '<' and '>'; an accepted URL is http(s) with a
// lower-case host; a redirect is only ever resolved to an http(s) URL; PercentEncode output
// is plain ASCII that decodes back to the input; Get returns the last value of a name; a
// parsed head has a three-digit status, HTTP/1.0 or 1.1, non-empty lower-case names and no
// line break in a name or value, and its length is absent, -1, or a value it carries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "fuzz_check.h"
#include "net/errors.h"
#include "net/http1.h"
#include "net/transport.h"
#include "net/url.h"

namespace {

using modelsync::fuzz::Input;
namespace net = modelsync::net;

int Unhex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Decodes(const std::string& enc, std::string_view want) {
  std::string out;
  for (size_t i = 0; i < enc.size(); ++i) {
    if (enc[i] != '%') {
      out.push_back(enc[i]);
      continue;
    }
    if (i + 2 >= enc.size()) return false;
    int hi = Unhex(enc[i + 1]), lo = Unhex(enc[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out == want;
}

bool HasUpper(const std::string& s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  switch (in.Byte() % 7) {
    case 0: {
      std::string_view etag = in.Rest();
      std::string out = net::NormalizeEtag(etag);
      FUZZ_CHECK(out.size() <= etag.size());
      FUZZ_CHECK(!HasUpper(out));
      break;
    }
    case 1: {
      std::string_view link = in.Rest();
      std::string next = net::LinkNext(link);
      if (!next.empty()) {
        size_t at = link.find("<" + next + ">");
        FUZZ_CHECK(at != std::string_view::npos);
      }
      break;
    }
    case 2: {
      std::string url(in.Rest());
      auto p = net::ParseUrl(url);
      if (p.ok()) {
        FUZZ_CHECK(p->scheme == "http" || p->scheme == "https");
        FUZZ_CHECK(!p->host.empty() && !HasUpper(p->host));
        FUZZ_CHECK(!p->port.empty());
      }
      break;
    }
    case 3: {
      std::string base(in.Chunk());
      std::string location(in.Rest());
      auto r = net::ResolveLocation(base, location);
      if (r.ok()) {
        FUZZ_CHECK(r->rfind("http://", 0) == 0 || r->rfind("https://", 0) == 0);
        FUZZ_CHECK(net::ParseUrl(*r).ok());
      }
      std::string red = net::RedactQuery(location);
      FUZZ_CHECK(red.find('?') == std::string::npos || red.find('?') == red.size() - 4);
      break;
    }
    case 4: {
      bool keep_slash = (in.Byte() & 1) != 0;
      std::string_view s = in.Rest();
      std::string enc = net::PercentEncode(s, keep_slash);
      for (char c : enc) FUZZ_CHECK(c > ' ' && c < 127 && c != '?' && c != '#');
      if (!keep_slash) FUZZ_CHECK(enc.find('/') == std::string::npos);
      FUZZ_CHECK(Decodes(enc, s));
      break;
    }
    case 5: {
      net::ResponseHead head;
      std::optional<std::string> last;
      while (!in.empty()) {
        bool match = (in.Byte() & 1) != 0;
        std::string value(in.Chunk());
        head.headers.emplace_back(match ? "etag" : "x-linked-etag", value);
        if (match) last = value;
      }
      FUZZ_CHECK(head.Get("etag") == last);
      break;
    }
    case 6: {
      net::ResponseHead head;
      int minor = -1;
      if (!net::ParseHead(in.Rest(), &head, &minor)) break;
      FUZZ_CHECK(head.status >= 100 && head.status <= 999);
      FUZZ_CHECK(minor == 0 || minor == 1);
      for (const auto& [name, value] : head.headers) {
        FUZZ_CHECK(!name.empty() && !HasUpper(name));
        FUZZ_CHECK(name.find("\r\n") == std::string::npos);
        FUZZ_CHECK(value.find("\r\n") == std::string::npos);
      }
      const std::optional<int64_t> length = net::ContentLength(head);
      if (length && *length >= 0) {
        bool carried = false;
        for (const auto& [name, value] : head.headers)
          carried |= name == "content-length" && std::strtoll(value.c_str(), nullptr, 10) == *length;
        FUZZ_CHECK(carried);
      }
      FUZZ_CHECK(!length || *length >= -1);
      (void)net::HasToken(head.Get("connection"), "close");
      break;
    }
  }
  return 0;
}
