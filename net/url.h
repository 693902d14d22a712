// URL helpers for the hub client (internal to net/).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace modelsync::net {

// Percent-encodes every byte except A-Z a-z 0-9 - . _ ~ and, when keep_slash, '/'.
// Python's quote(path) (keep_slash) and quote(rev, safe="") (not).
std::string PercentEncode(std::string_view s, bool keep_slash);

struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // lower case (an IPv6 address in brackets)
  std::string port;    // explicit or the scheme's default ("80"/"443")
  std::string authority;  // the Host header: host, and the port unless the scheme's default
  std::string target;     // the request target: path ("/" at least) and query, no fragment
  bool credentials = false;  // user or password in the URL
  std::string Origin() const { return scheme + "://" + host + ":" + port; }
};

// Parses an absolute http(s) URL. Other schemes or garbage: kPermanent.
Result<UrlParts> ParseUrl(const std::string& url);

// A redirect target the client never connects to: an IP literal that is link-local
// (169.254.0.0/16, fe80::/10: cloud metadata services live there) or unspecified (0.0.0.0,
// ::). kPermanent naming it and why; OK otherwise (host names are not resolved here).
Status CheckRedirectTarget(const std::string& url);

// A redirect from an https URL to an http one (a downgrade: what follows travels in
// cleartext) is kPermanent naming both and --allow-insecure-redirects, unless allow_insecure.
Status CheckRedirectScheme(const std::string& from, const std::string& to, bool allow_insecure);

// Resolves a Location header against the URL it answered. Only http and https targets are
// allowed (kPermanent otherwise).
Result<std::string> ResolveLocation(const std::string& base, const std::string& location);

// The URL without its query (signed CDN URLs carry credentials in the query).
std::string RedactQuery(const std::string& url);

// Finds the rel="next" target of a Link header, or "".
std::string LinkNext(std::string_view link_header);

}  // namespace modelsync::net
