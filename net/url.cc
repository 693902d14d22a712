#include "net/url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "base/strings.h"

namespace modelsync::net {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

std::string Part(CURLU* u, CURLUPart what, unsigned flags = 0) {
  char* out = nullptr;
  if (curl_url_get(u, what, &out, flags) != CURLUE_OK || out == nullptr) return "";
  std::string s(out);
  curl_free(out);
  return s;
}

}  // namespace

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<UrlParts> ParseUrl(const std::string& url) {
  UrlHandle u(curl_url());
  if (!u) return Status::Permanent("out of memory parsing a URL");
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return Status::Permanent("malformed URL '" + RedactQuery(url) +
                             "': check HF_ENDPOINT / --endpoint");
  }
  UrlParts p;
  p.scheme = AsciiLower(Part(u.get(), CURLUPART_SCHEME));
  p.host = AsciiLower(Part(u.get(), CURLUPART_HOST));
  p.port = Part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  const bool default_port = p.port == (p.scheme == "https" ? "443" : "80");
  p.authority = default_port ? p.host : p.host + ":" + p.port;
  p.target = Part(u.get(), CURLUPART_PATH);
  if (p.target.empty()) p.target = "/";
  if (std::string q = Part(u.get(), CURLUPART_QUERY); !q.empty()) p.target += "?" + q;
  p.credentials = !Part(u.get(), CURLUPART_USER).empty() || !Part(u.get(), CURLUPART_PASSWORD).empty();
  if (p.scheme != "http" && p.scheme != "https") {
    return Status::Permanent("URL '" + RedactQuery(url) +
                             "' is not http or https: only those schemes are followed");
  }
  if (p.host.empty()) return Status::Permanent("URL '" + RedactQuery(url) + "' has no host");
  return p;
}

Status CheckRedirectScheme(const std::string& from, const std::string& to, bool allow_insecure) {
  if (allow_insecure) return Status::Ok();
  auto f = ParseUrl(from);
  auto t = ParseUrl(to);
  if (!f.ok() || !t.ok() || f->scheme != "https" || t->scheme != "http") return Status::Ok();
  return Status::Permanent("refusing the redirect from " + RedactQuery(from) + " to " +
                           RedactQuery(to) +
                           ": it leaves HTTPS for plain HTTP (what follows would travel in "
                           "cleartext); if this mirror is meant to work so, pass "
                           "--allow-insecure-redirects");
}

Status CheckRedirectTarget(const std::string& url) {
  MS_ASSIGN_OR_RETURN(UrlParts u, ParseUrl(url));
  std::string host = u.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string why;
  in_addr a4{};
  in6_addr a6{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    uint32_t ip = ntohl(a4.s_addr);
    if (ip == 0) why = "the unspecified address";
    else if ((ip >> 16) == 0xA9FE) why = "a link-local address (where cloud metadata services answer)";
  } else if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    static const in6_addr kAny = IN6ADDR_ANY_INIT;
    if (std::memcmp(&a6, &kAny, sizeof a6) == 0) why = "the unspecified address";
    else if (a6.s6_addr[0] == 0xfe && (a6.s6_addr[1] & 0xc0) == 0x80)
      why = "a link-local address";
    else if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      uint32_t ip = uint32_t{a6.s6_addr[12]} << 24 | uint32_t{a6.s6_addr[13]} << 16 |
                    uint32_t{a6.s6_addr[14]} << 8 | a6.s6_addr[15];
      if (ip == 0) why = "the unspecified address";
      else if ((ip >> 16) == 0xA9FE) why = "a link-local address (where cloud metadata services answer)";
    }
  }
  if (why.empty()) return Status::Ok();
  return Status::Permanent("refusing a redirect to " + u.host + ": it is " + why +
                           ", never a hub or CDN (check HF_ENDPOINT and what sits in front of it)");
}

Result<std::string> ResolveLocation(const std::string& base, const std::string& location) {
  UrlHandle u(curl_url());
  if (!u) return Status::Permanent("out of memory parsing a URL");
  if (curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    return Status::Permanent("the server redirected to a malformed URL '" + RedactQuery(location) +
                             "'");
  }
  std::string out = Part(u.get(), CURLUPART_URL);
  auto parts = ParseUrl(out);
  if (!parts.ok()) {
    return Status::Permanent("refusing a redirect to '" + RedactQuery(location) +
                             "': only http and https redirects are followed");
  }
  return out;
}

std::string RedactQuery(const std::string& url) {
  size_t q = url.find('?');
  return q == std::string::npos ? url : url.substr(0, q) + "?…";
}

std::string LinkNext(std::string_view h) {
  // Link: <url>; rel="next", <url2>; rel="prev"
  size_t pos = 0;
  while (pos < h.size()) {
    size_t lt = h.find('<', pos);
    if (lt == std::string_view::npos) return "";
    size_t gt = h.find('>', lt);
    if (gt == std::string_view::npos) return "";
    size_t end = h.find(',', gt);
    // A ',' may appear inside a quoted param; good enough for rel lists the hub sends.
    std::string_view params =
        h.substr(gt + 1, end == std::string_view::npos ? h.npos : end - gt - 1);
    std::string p = AsciiLower(std::string(params));
    p.erase(std::remove(p.begin(), p.end(), ' '), p.end());
    if (p.find("rel=\"next\"") != std::string::npos || p.find("rel=next") != std::string::npos) {
      return std::string(h.substr(lt + 1, gt - lt - 1));
    }
    if (end == std::string_view::npos) return "";
    pos = end + 1;
  }
  return "";
}

}  // namespace modelsync::net
