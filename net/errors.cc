#include "net/errors.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace modelsync::net {
namespace {

// The hub's own words, from X-Error-Message or the JSON body's "error".
std::string HubMessage(const ResponseHead& head, const std::string& body) {
  if (auto m = head.Get("x-error-message"); m && !m->empty()) return *m;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    auto it = j.find("error");
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

std::string WithHub(std::string msg, const std::string& hub) {
  if (!hub.empty()) msg += " (hub says: " + hub.substr(0, 300) + ")";
  return msg;
}

}  // namespace

std::string ErrorContext::Describe() const {
  std::string s = repo;
  if (!revision.empty()) s += "@" + revision;
  if (!path.empty()) s += ": " + path;
  return s;
}

std::string NormalizeEtag(std::string_view etag) {
  if (etag.substr(0, 2) == "W/" || etag.substr(0, 2) == "w/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return AsciiLower(etag);
}

Status MapHttpError(const ErrorContext& ctx, const ResponseHead& head, const std::string& body) {
  const long st = head.status;
  const std::string code = head.Get("x-error-code").value_or("");
  const std::string hub = HubMessage(head, body);
  const std::string rev = ctx.revision.empty() ? "main" : ctx.revision;
  if (code == "GatedRepo") {
    std::string m = ctx.repo + " is gated: request access on the hub, then set HF_TOKEN";
    if (ctx.has_token) m += " (the token in use has not been granted access yet)";
    return Status::Unauthorized(WithHub(m, hub), st);
  }
  if (code == "RevisionNotFound") {
    return Status::NotFound(WithHub("revision '" + rev + "' not found in " + ctx.repo +
                                        ": check the branch, tag or commit",
                                    hub),
                            st);
  }
  if (code == "EntryNotFound") {
    return Status::NotFound(
        WithHub("file '" + ctx.path + "' not found in " + ctx.repo + " at revision " + rev +
                    ": the listing and the hub disagree; resolve the revision again",
                hub),
        st);
  }
  if (st == 401 && hub == "Invalid credentials in Authorization header") {
    return Status::Unauthorized(
        "the hub rejected the token for " + ctx.repo + " (invalid credentials): check HF_TOKEN",
        st);
  }
  if (code == "RepoNotFound" || st == 401) {
    std::string m = "repository " + ctx.repo +
                    " not found or private: check the name, or log in by setting HF_TOKEN";
    if (ctx.has_token)
      m = "repository " + ctx.repo +
          " not found or private: check the name, and that your HF_TOKEN may "
          "read it";
    return code == "RepoNotFound" ? Status::NotFound(WithHub(m, hub), st)
                                  : Status::Unauthorized(WithHub(m, hub), st);
  }
  if (st == 403) {
    return Status::Unauthorized(WithHub("access to " + ctx.repo + "@" + rev +
                                            " denied (403): check that HF_TOKEN may read it",
                                        hub),
                                st);
  }
  if (st == 404) {
    return Status::NotFound(
        WithHub(ctx.Describe() + " not found (404): check the repository, revision and path", hub),
        st);
  }
  if (st == 416) {
    return Status::Permanent(
        WithHub("the hub refused the byte range for " + ctx.Describe() +
                    " (416): the file is shorter than the listing says; resolve the revision again",
                hub),
        st);
  }
  return Status::Permanent(
      WithHub("the hub answered HTTP " + std::to_string(st) + " for " + ctx.Describe() +
                  ": not retryable; check the endpoint (HF_ENDPOINT) and the request",
              hub),
      st);
}

Status RetriesExhausted(const ErrorContext& ctx, const ResponseHead& head, int attempts) {
  const std::string n = std::to_string(attempts);
  if (head.status == 429) {
    return Status::Transient("rate limited by the hub (429) " + n + " times for " + ctx.Describe() +
                                 ": wait and retry later (logging in with HF_TOKEN raises limits)",
                             429);
  }
  return Status::Transient("the hub kept failing (HTTP " + std::to_string(head.status) + ", " + n +
                               " attempts) for " + ctx.Describe() + ": retry later",
                           head.status);
}

namespace {

const char* ReasonPhrase(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

std::string ProxyName(const ProxyChoice& p) {
  return "proxy " + p.display + (p.source.empty() ? "" : " (from " + p.source + ")");
}

}  // namespace

bool LooksLikeHubAnswer(const ResponseHead& head) {
  return head.Get("x-error-code") || head.Get("x-error-message") || head.Get("x-request-id");
}

Status ProxyRefused(const ErrorContext& ctx, const ProxyChoice& proxy, long status,
                    const std::string& target, bool tunnel) {
  std::string what = std::to_string(status);
  if (const char* r = ReasonPhrase(status); *r) what += std::string(" ") + r;
  const std::string var = proxy.source.empty() ? "the proxy URL" : proxy.source;
  const std::string head = ProxyName(proxy) + (tunnel ? " refused CONNECT to " + target
                                                      : " refused the request to " + target) +
                           ": " + what;
  if (status == 407 || status == 401) {
    const std::string fix =
        proxy.has_credentials
            ? "the proxy rejected the user name and password in " + var + ": check them"
            : "set credentials in " + var + " (http://USER:PASSWORD@" +
                  proxy.display.substr(proxy.display.find("://") + 3) + ")";
    return Status::Unauthorized(head + " for " + ctx.Describe() + ": " + fix, status);
  }
  if (status == 403 || (status >= 400 && status < 500)) {
    return Status::Unauthorized(head + " for " + ctx.Describe() +
                                    ": the proxy's policy denies this host or port; ask its "
                                    "administrator to allow it, or exempt the host with NO_PROXY",
                                status);
  }
  return Status::Transient(head + " for " + ctx.Describe() +
                               ": the proxy could not reach the hub; check the proxy and the "
                               "network behind it, or retry later",
                           status);
}

Status ProxyUnreachable(const ErrorContext& ctx, const ProxyChoice& proxy,
                        const ExchangeResult& result, int attempts) {
  return Status::Transient("cannot connect to " + ProxyName(proxy) + " (" + result.detail + ", " +
                               std::to_string(attempts) + " attempts) for " + ctx.Describe() +
                               ": check that the proxy runs and that " +
                               (proxy.source.empty() ? "its URL" : proxy.source) +
                               " names it, or exempt the hub with NO_PROXY",
                           result.code);
}

bool IsRetryable(TransportError error) {
  switch (error) {
    case TransportError::kResolve:
    case TransportError::kProxyResolve:
    case TransportError::kConnect:
    case TransportError::kTimeout:
    case TransportError::kDropped:
      return true;
    default:
      return false;
  }
}

Status MapTransportError(const ErrorContext& ctx, const ExchangeResult& result,
                         const std::string& host, int attempts) {
  const std::string& what = result.detail;
  const std::string n = std::to_string(attempts);
  const long code = result.code;
  switch (result.error) {
    case TransportError::kResolve:
    case TransportError::kProxyResolve:
    case TransportError::kConnect:
      return Status::Transient("network unreachable: cannot connect to " + host + " (" + what +
                                   ", " + n + " attempts) for " + ctx.Describe() +
                                   ": check the network connection, or HF_ENDPOINT",
                               code);
    case TransportError::kTimeout:
      return Status::Transient("transfer from " + host + " stalled or timed out " + n +
                                   " times for " + ctx.Describe() +
                                   ": check the network connection and retry",
                               code);
    case TransportError::kTls:
      return Status::Permanent(
          "TLS failure talking to " + host + " (" + what + ") for " + ctx.Describe() +
              ": if a proxy or mirror presents its own certificate authority, point "
              "SSL_CERT_FILE (or CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, --ca-bundle) at its PEM file; "
              "otherwise check the system clock and HF_ENDPOINT",
          code);
    case TransportError::kBadUrl:
      return Status::Permanent("cannot use URL on " + host + " (" + what + ") for " +
                                   ctx.Describe() + ": check HF_ENDPOINT / --endpoint",
                               code);
    case TransportError::kDropped:
      return Status::Transient("connection to " + host + " kept failing (" + what + ", " + n +
                                   " attempts) for " + ctx.Describe() +
                                   ": check the network connection and retry",
                               code);
    default:
      return Status::Permanent(
          "transfer from " + host + " failed (" + what + ") for " + ctx.Describe(), code);
  }
}

std::string Scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  // Replaces the occurrences in the original text, left to right, never searching a
  // replacement again: a secret inside "<token>" (e.g. "ok") used to loop forever.
  std::string out;
  size_t from = 0;
  for (size_t p = text.find(secret); p != std::string::npos; p = text.find(secret, from)) {
    out.append(text, from, p - from);
    out += "<token>";
    from = p + secret.size();
  }
  if (from == 0) return text;
  out.append(text, from);
  return out;
}

Status ScrubStatus(const Status& s, const std::string& secret) {
  if (s.ok() || secret.empty() || s.message().find(secret) == std::string::npos) return s;
  std::string m = Scrub(s.message(), secret);
  const long d = s.detail();
  switch (s.code()) {
    case StatusCode::kNotFound:
      return Status::NotFound(m, d);
    case StatusCode::kCorruption:
      return Status::Corruption(m, d);
    case StatusCode::kIOError:
      return Status::IOError(m, d);
    case StatusCode::kInvalidArgument:
      return Status::InvalidArgument(m, d);
    case StatusCode::kNoSpace:
      return Status::NoSpace(m, d);
    case StatusCode::kTransient:
      return Status::Transient(m, d);
    case StatusCode::kIntegrity:
      return Status::Integrity(m, d);
    case StatusCode::kCancelled:
      return Status::Cancelled(m, d);
    case StatusCode::kLocked:
      return Status::Locked(m, d);
    case StatusCode::kUnauthorized:
      return Status::Unauthorized(m, d);
    case StatusCode::kOffline:
      return Status::Offline(m, d);
    case StatusCode::kVersion:
      return Status::Version(m, d);
    default:
      return Status::Permanent(m, d);
  }
}

}  // namespace modelsync::net
