// Mapping of hub responses and transport failures to Status (internal to net/).
//
// Every message names what was being done (repo, revision, file) and says what to do next.
// The token never appears: Scrub() removes it from any text that came from the server.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "net/proxy.h"
#include "net/transport.h"

namespace modelsync::net {

struct ErrorContext {
  std::string repo;
  std::string revision;  // ref or commit
  std::string path;      // file path, or empty for API calls
  bool has_token = false;
  std::string Describe() const;  // "org/name@rev" or "org/name@rev: path"
};

// "W/\"abc\"" -> "abc" (lower case).
std::string NormalizeEtag(std::string_view etag);

// A final, non-retryable HTTP error (status >= 400, not 408/429/5xx). body = first bytes.
Status MapHttpError(const ErrorContext& ctx, const ResponseHead& head, const std::string& body);

// Retryable HTTP status, once attempts are exhausted.
Status RetriesExhausted(const ErrorContext& ctx, const ResponseHead& head, int attempts);

// An exchange that failed below HTTP (result.error != kNone). Transient for connection-level
// problems, Permanent for TLS and URL problems. host is only the host name and port (no
// query, no credentials). The transport's own words (result.detail: "self-signed
// certificate", "no alternative certificate subject name matches") name the cause; its code
// is the Status detail.
Status MapTransportError(const ErrorContext& ctx, const ExchangeResult& result,
                         const std::string& host, int attempts);

// A proxy answered instead of the hub: `status` is its answer to CONNECT (tunnel, an https
// target) or to the request itself (an http target). 407 and 403 are kUnauthorized (never
// retried: asking again cannot help); 5xx is kTransient (the proxy could not reach `target`,
// host:port). A 401 reads as a 407 (some proxies answer bad credentials so). The message names the proxy (no credentials), the variable it came from, its
// status, and what to do.
Status ProxyRefused(const ErrorContext& ctx, const ProxyChoice& proxy, long status,
                    const std::string& target, bool tunnel);
// The proxy itself cannot be reached (refused connection, unknown name): kTransient naming
// the proxy, not the hub.
Status ProxyUnreachable(const ErrorContext& ctx, const ProxyChoice& proxy,
                        const ExchangeResult& result, int attempts);
// An HTTP error answer that carries none of the hub's headers (X-Error-Code, X-Error-Message,
// X-Request-Id): through a proxy, it may be the proxy's own.
bool LooksLikeHubAnswer(const ResponseHead& head);

// Whether a transport failure is worth retrying (resolve, connect, timeout, dropped).
bool IsRetryable(TransportError error);

// Removes every occurrence of secret from text (no-op when secret is empty).
std::string Scrub(std::string text, const std::string& secret);
// The same status with Scrub() applied to its message.
Status ScrubStatus(const Status& s, const std::string& secret);

}  // namespace modelsync::net
