// HubOptions: how the hub client reaches the hub, and how hard it tries.
//
// Values; copy freely. Nothing in net/ reads the environment or a file: the engine fills
// these from its Env's Config (engine/env.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "net/proxy.h"

namespace modelsync::net {

class TransportFactory;

inline constexpr char kDefaultEndpoint[] = "https://huggingface.co";

// A request about to be retried, as the user should hear it (never silence while waiting).
struct RetryNotice {
  // What happened and what comes next: "the hub asked to wait 12 s (HTTP 429, rate limited)
  // before retrying org/name@main: config.json", "connection lost during org/name@main:
  // model.safetensors; resuming where it stopped", "<error>; retry 2 of 6 in 1.3 s".
  std::string message;
  std::chrono::milliseconds delay{0};  // until the retry starts
  int http_status = 0;                 // 0: no HTTP answer (connection error, stall)
  bool resuming = false;               // the attempt moved bytes: the retry continues from there
};

struct HubOptions {
  // Base URL of the hub (HF_ENDPOINT / --endpoint), without a trailing '/'. The token is
  // sent only to this origin (scheme, host and port), never to a redirect target elsewhere.
  std::string endpoint = kDefaultEndpoint;
  // Bearer token; empty = anonymous. Never logged, never put into a Status message.
  std::string token;
  // Trusted certificate authorities instead of the system store: a PEM bundle file and/or a
  // directory of hashed certificates (SSL_CERT_FILE & co., --ca-bundle). "" = system store.
  std::string ca_file, ca_dir;
  // Proxies by URL scheme and the hosts exempt from them (net/proxy.h; the engine fills it
  // from http_proxy, https_proxy, all_proxy, no_proxy and their upper-case forms).
  ProxySettings proxy;
  // Follow a redirect from https to http (--allow-insecure-redirects). Off: refused.
  bool allow_insecure_redirects = false;
  // HF_HUB_OFFLINE: every request fails with kOffline and none is sent.
  bool offline = false;
  // Attempts per request without progress (connection errors, stalls, 408, 429, 5xx). An
  // attempt that delivered body bytes resets the count (a dropped transfer resumes).
  int max_attempts = 6;
  // Exponential backoff with full jitter: after the n-th failed attempt in a row (n >= 1) the
  // wait is uniform[0, min(max, base * 2^(n-1))], drawn from the seeded source below.
  // A Retry-After (integer seconds) replaces the jittered delay.
  std::chrono::milliseconds backoff_base{500}, backoff_max{30000};
  // No body byte for this long aborts the transfer and retries it (rounded up to whole
  // seconds; libcurl's low-speed check). A healthy transfer has no wall-clock cap.
  std::chrono::milliseconds stall_timeout{20000};
  std::chrono::milliseconds connect_timeout{10000};
  // Addresses to use for a host instead of resolving it, as curl's --resolve has them:
  // "host:port:addr[,addr...]" (an IPv6 address in brackets). Both transports honour them
  // (libcurl through CURLOPT_RESOLVE, the range reader before its resolver): for tests, and
  // for pinning a host to known addresses.
  std::vector<std::string> resolve;
  // Connections in total, and per host.
  int max_connections = 16;
  // Sent as User-Agent; empty = "modelsync" (net does not know the version: the engine sets
  // "modelsync/<version>").
  std::string user_agent;
  // Backoff waits are measured on this clock (FakeClock in tests; polled every few ms).
  // nullptr = SystemClock::Default(). Not owned; must outlive the Hub.
  Clock* clock = nullptr;
  // Seeds the backoff jitter (the Env's random source gives one per Hub; tests a fixed one).
  uint64_t seed = 0;
  // Called on the hub's loop thread before each retry's wait; must not block. Null = silent.
  std::function<void(const RetryNotice&)> on_retry;
  // What carries the exchanges (net/transport.h). Null = libcurl (CurlTransportFactory()).
  std::shared_ptr<TransportFactory> transport;
};

// "https://hub.example/" -> "https://hub.example". Exposed for --endpoint.
std::string NormalizeEndpoint(std::string endpoint);

}  // namespace modelsync::net
