// Env: the engine's only way to reach the world (leveldb's Env). Every engine entry point
// takes one; the CLI (or an app) builds it once, from flags and the environment.
//
//  - fs:     every file-system side effect below a root (storage/file_system.h). Tests pass a
//            FaultFileSystem to crash or fail the Nth write.
//  - clock:  monotonic time (timers, rates, backoff) and wall time (event timestamps).
//  - random: the seeded source of jitter (backoff, the daemon's schedule).
//  - config: what used to be read from the environment inside the engine (endpoint, token,
//            offline, tuning knobs). Nothing under engine/, storage/ or net/ calls getenv.
//  - transport: what carries HTTP to the hub and its CDN (net/transport.h): null = libcurl.
//            An app plugs its own here (on iOS a background URLSession); every check above
//            HTTP (identity, hashes, retries, resume, redirects, the token's origin) stays
//            modelsync's.
//
// The platform calls (renameat2, OFD locks, fadvise, ...) sit behind storage::FileSystem and
// the files named in docs/PLATFORM.md; RealEnv() is the only place the real ones are chosen.
//
// Ownership: an Env holds pointers it does not own; they must outlive every call made with
// it. Thread safety: FileSystem, Clock and Random are thread-safe; Config is a value.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "base/status.h"

namespace modelsync::storage {
class FileSystem;
}
namespace modelsync::net {
class TransportFactory;
}

namespace modelsync::engine {

inline constexpr char kDefaultEndpoint[] = "https://huggingface.co";
// The range size a large file is split into (MODELSYNC_CHUNK_BYTES).
inline constexpr uint64_t kDefaultChunkBytes = 32ull << 20;
// Files up to this size are fetched into memory, with no partial file and no range events
// (MODELSYNC_SMALL_FILE_BYTES).
inline constexpr uint64_t kDefaultSmallFileBytes = 8ull << 20;

struct Config {
  // Hub base URL without a trailing '/' (HF_ENDPOINT, --endpoint).
  std::string endpoint = kDefaultEndpoint;
  // Bearer token; empty = anonymous. Sent only to the endpoint's origin, never logged.
  std::string token;
  // HF_HUB_OFFLINE: no request at all; answers come from the log.
  bool offline = false;
  // Trusted certificate authorities instead of the system store (a TLS-inspecting proxy, a
  // private mirror): a PEM file (CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, in that
  // order, or --ca-bundle) and a directory (SSL_CERT_DIR). "" = the system store.
  std::string ca_file, ca_dir;
  // Proxies (http_proxy, https_proxy, all_proxy, no_proxy, lower case first, then upper
  // case), chosen per URL by curl's rules (net/proxy.h): an http:// URL goes through `http`,
  // an https:// one through `https`, either else through `all`, unless no_proxy exempts its
  // host. Empty = direct. *_from name the variable each came from, for messages.
  struct Proxies {
    std::string http, https, all, no_proxy;
    std::string http_from, https_from, all_from;
  } proxy;
  // The Hugging Face cache huggingface_hub uses (engine/hf_cache.h): HF_HUB_CACHE, else
  // HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
  // $HOME/.cache/huggingface/hub; "" when none of them is set.
  std::string hf_cache;
  // --allow-insecure-redirects: follow an https -> http redirect (refused otherwise).
  bool allow_insecure_redirects = false;
  uint64_t chunk_bytes = kDefaultChunkBytes;
  uint64_t small_file_bytes = kDefaultSmallFileBytes;
  // A connection with no body byte for this long is retried (MODELSYNC_STALL_TIMEOUT).
  std::chrono::milliseconds stall_timeout{20000};
  // HTTP attempts per request without progress before it fails (MODELSYNC_HUB_ATTEMPTS).
  int hub_attempts = 6;
};

struct Env {
  storage::FileSystem* fs = nullptr;
  Clock* clock = nullptr;
  Random* random = nullptr;
  Config config;
  std::shared_ptr<net::TransportFactory> transport;
  // Told when an operation is about to wait for the root's lock (another modelsync holds it):
  // "root R is in use by pid N (modelsync pull org/name); waiting for it to finish". Null =
  // wait silently. The CLI prints it on stderr. (Pull tells its PullObserver instead.)
  std::function<void(const std::string& message)> on_lock_wait;
};

// The real world: the process's real file system, the system clock, and a random source
// seeded from the operating system. The pointers are process-wide and live forever.
Env RealEnv(Config config = {});

// A Config from the process environment: HF_ENDPOINT (trailing '/' stripped), the token
// (HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the file at HF_TOKEN_PATH, then
// $HF_HOME/token, then $XDG_CACHE_HOME/huggingface/token, then ~/.cache/huggingface/token;
// whitespace stripped; a missing file is no token), HF_HUB_OFFLINE (1/ON/YES/TRUE in any
// case), MODELSYNC_CHUNK_BYTES, MODELSYNC_SMALL_FILE_BYTES, MODELSYNC_STALL_TIMEOUT,
// MODELSYNC_HUB_ATTEMPTS, CURL_CA_BUNDLE / REQUESTS_CA_BUNDLE / SSL_CERT_FILE (a readable
// file), SSL_CERT_DIR (a directory). A malformed value is kInvalidArgument naming the variable.
Result<Config> ConfigFromEnvironment();

// A hub endpoint modelsync can use: an absolute http:// or https:// URL with a host (a path
// prefix is allowed, for mirrors; no query or fragment). kInvalidArgument saying what is
// wrong otherwise. HF_ENDPOINT and --endpoint are both checked with it.
Status CheckEndpoint(const std::string& url);

// A proxy URL modelsync can use (http, https, socks4/4a/5/5h, a host, no white space); the
// value is never repeated in the message (it may hold a password). `name` says where it came
// from ("https_proxy", "MS_OPT_HTTPS_PROXY").
Status CheckProxy(const std::string& name, const std::string& value);

// True for 1/ON/YES/TRUE in any case (surrounding white space ignored).
bool IsTruthy(const std::string& value);

}  // namespace modelsync::engine
