// Proxies: which one a URL goes through, decided here, not by libcurl reading the
// environment (net/ reads no environment; the engine's Config carries these values).
//
// The rules are curl's, so a user's existing settings mean what they mean to curl:
//  - an http:// URL uses `http`, an https:// URL uses `https`; either falls back to `all`;
//  - `no_proxy` is a list of host names, domains and IP addresses (with an optional CIDR
//    suffix) separated by commas or white space; "*" alone exempts every host; a name
//    matches itself and every name below it (".example.com" and "example.com" both match
//    "hub.example.com" and "example.com"); ports are ignored; case does not matter;
//  - a proxy URL without a scheme is http://.
#pragma once

#include <string>

namespace modelsync::net {

struct ProxySettings {
  std::string http, https, all;  // proxy URLs ("" = none)
  std::string no_proxy;          // the NO_PROXY list as given
  // Where each came from, for messages ("https_proxy", "--proxy"); "" = unnamed.
  std::string http_from, https_from, all_from;
};

struct ProxyChoice {
  std::string url;     // the proxy as libcurl takes it (credentials included); "" = direct
  std::string source;  // the variable it came from ("HTTPS_PROXY"), or ""
  // The proxy without credentials, with a scheme: safe to print ("http://127.0.0.1:3128").
  std::string display;
  bool has_credentials = false;  // the URL carries a user name (and password)
};

// The proxy a request to `url` goes through ("" when none applies or no_proxy exempts it).
ProxyChoice ChooseProxy(const ProxySettings& settings, const std::string& url);

// True when `host` (a name, an IPv4 address or a bracketed or bare IPv6 address) is exempt
// under the no_proxy list.
bool NoProxyMatches(const std::string& no_proxy, std::string host);

// "user:secret@host:3128" -> "http://host:3128": the scheme made explicit (curl's default is
// http), user information dropped.
std::string DisplayProxy(const std::string& proxy_url);

// A proxy value modelsync can use: no white space or control characters, a scheme (if any)
// among http, https, socks4, socks4a, socks5, socks5h, and a host. Empty = ok.
bool IsUsableProxy(const std::string& proxy_url, std::string* why);

}  // namespace modelsync::net
