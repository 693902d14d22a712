#include "net/proxy.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "base/strings.h"
#include "net/url.h"

namespace modelsync::net {
namespace {

std::string StripBrackets(std::string h) {
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  return h;
}

// An IP address as bytes (4 or 16), or empty when `s` is none.
std::string IpBytes(const std::string& s) {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
  if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 16);
  return "";
}

bool PrefixEqual(const std::string& a, const std::string& b, int bits) {
  if (a.size() != b.size() || bits < 0 || bits > static_cast<int>(a.size()) * 8) return false;
  int whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (static_cast<unsigned char>(a[whole]) & mask) == (static_cast<unsigned char>(b[whole]) & mask);
}

bool TokenMatches(std::string token, const std::string& host, const std::string& host_ip) {
  if (!host_ip.empty()) {
    // An address matches an address (optionally with /bits), never a name.
    int bits = -1;
    if (size_t slash = token.find('/'); slash != std::string::npos) {
      const std::string b = token.substr(slash + 1);
      if (b.empty() || b.size() > 3 || b.find_first_not_of("0123456789") != std::string::npos)
        return false;
      bits = std::stoi(b);
      token.resize(slash);
    }
    token = StripBrackets(token);
    const std::string want = IpBytes(token);
    if (want.empty()) return false;
    return PrefixEqual(want, host_ip, bits < 0 ? static_cast<int>(want.size()) * 8 : bits);
  }
  if (!token.empty() && token.front() == '.') token.erase(0, 1);
  if (!token.empty() && token.back() == '.') token.pop_back();
  if (token.empty()) return false;
  if (host == token) return true;
  return host.size() > token.size() && host.compare(host.size() - token.size(), token.size(), token) == 0 &&
         host[host.size() - token.size() - 1] == '.';
}

// curl takes a proxy without a scheme as http:// (a URL without one would be https://).
std::string WithScheme(const std::string& proxy_url) {
  return proxy_url.find("://") == std::string::npos ? "http://" + proxy_url : proxy_url;
}

struct CurlUrl {
  CURLU* u = curl_url();
  ~CurlUrl() { curl_url_cleanup(u); }
  std::string Get(CURLUPart part) const {
    char* out = nullptr;
    if (curl_url_get(u, part, &out, 0) != CURLUE_OK || out == nullptr) return "";
    std::string s(out);
    curl_free(out);
    return s;
  }
};

}  // namespace

bool NoProxyMatches(const std::string& no_proxy, std::string host) {
  host = AsciiLower(StripBrackets(host));
  while (!host.empty() && host.back() == '.') host.pop_back();
  const std::string host_ip = IpBytes(host);
  std::string list = AsciiLower(no_proxy);
  if (std::string(TrimSpace(list)) == "*") return true;  // "*" alone exempts every host
  size_t i = 0;
  while (i < list.size()) {
    size_t j = list.find_first_of(", \t", i);
    if (j == std::string::npos) j = list.size();
    std::string token = list.substr(i, j - i);
    i = j + 1;
    if (token.empty() || token == "*") continue;  // "*" only counts alone, as in curl
    if (TokenMatches(token, host, host_ip)) return true;
  }
  return false;
}

std::string DisplayProxy(const std::string& proxy_url) {
  if (proxy_url.empty()) return "";
  CurlUrl p;
  if (p.u == nullptr ||
      curl_url_set(p.u, CURLUPART_URL, WithScheme(proxy_url).c_str(),
                   CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return "(unparsable proxy)";
  }
  std::string out = AsciiLower(p.Get(CURLUPART_SCHEME)) + "://" + p.Get(CURLUPART_HOST);
  if (std::string port = p.Get(CURLUPART_PORT); !port.empty()) out += ":" + port;
  return out;
}

bool IsUsableProxy(const std::string& proxy_url, std::string* why) {
  if (proxy_url.empty()) return true;
  for (unsigned char c : proxy_url) {
    if (c <= ' ' || c == 0x7F) {
      *why = "it contains white space or a control character";
      return false;
    }
  }
  CurlUrl p;
  if (p.u == nullptr ||
      curl_url_set(p.u, CURLUPART_URL, WithScheme(proxy_url).c_str(),
                   CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    *why = "not a URL like http://proxy.example:3128";
    return false;
  }
  const std::string scheme = AsciiLower(p.Get(CURLUPART_SCHEME));
  static const char* kSchemes[] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
  if (std::none_of(std::begin(kSchemes), std::end(kSchemes),
                   [&](const char* s) { return scheme == s; })) {
    *why = "the scheme '" + scheme + "' is not one of http, https, socks4, socks4a, socks5, socks5h";
    return false;
  }
  if (p.Get(CURLUPART_HOST).empty()) {
    *why = "it names no host";
    return false;
  }
  return true;
}

ProxyChoice ChooseProxy(const ProxySettings& s, const std::string& url) {
  ProxyChoice c;
  if (s.http.empty() && s.https.empty() && s.all.empty()) return c;  // no URL to parse
  auto parts = ParseUrl(url);
  if (!parts.ok()) return c;
  if (parts->scheme == "https" && !s.https.empty()) {
    c.url = s.https;
    c.source = s.https_from;
  } else if (parts->scheme == "http" && !s.http.empty()) {
    c.url = s.http;
    c.source = s.http_from;
  } else if (!s.all.empty()) {
    c.url = s.all;
    c.source = s.all_from;
  }
  if (c.url.empty() || NoProxyMatches(s.no_proxy, parts->host)) return ProxyChoice();
  c.display = DisplayProxy(c.url);
  CurlUrl p;
  c.has_credentials = p.u != nullptr &&
                      curl_url_set(p.u, CURLUPART_URL, WithScheme(c.url).c_str(),
                                   CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
                      !p.Get(CURLUPART_USER).empty();
  return c;
}

}  // namespace modelsync::net
