// ConfigFromEnvironment (engine/env.h): the only reader of the process environment.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "base/strings.h"
#include "base/units.h"
#include "engine/env.h"
#include "net/proxy.h"
#include "net/url.h"

namespace modelsync::engine {
namespace {

std::string Trim(std::string_view s) { return std::string(TrimSpace(s)); }

// A set, non-empty variable, or nullptr.
const char* Var(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

// Tokens are short; the read is capped at 64 KiB. A missing file is no token.
std::string ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string data(64 * 1024, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  return Trim(data);
}

Status Bad(const char* name, const char* value, const Status& why) {
  return Status::InvalidArgument(std::string(name) + "=" + value + " is not valid (" +
                                 why.message() + "): fix or unset it");
}

}  // namespace

Status CheckEndpoint(const std::string& url) {
  auto parts = net::ParseUrl(url);
  if (!parts.ok()) {
    return Status::InvalidArgument("hub endpoint '" + url + "' is not usable: " +
                                   parts.status().message() +
                                   " (give a URL like https://huggingface.co)");
  }
  if (url.find_first_of("?#") != std::string::npos) {
    return Status::InvalidArgument("hub endpoint '" + url +
                                   "' has a query or fragment: give the base URL only");
  }
  return Status::Ok();
}

Status CheckProxy(const std::string& name, const std::string& value) {
  std::string why;
  if (net::IsUsableProxy(Trim(value), &why)) return Status::Ok();
  return Status::InvalidArgument(name + " is not a usable proxy (" + why + "): fix or unset it");
}

bool IsTruthy(const std::string& value) {
  std::string v = Trim(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

Result<Config> ConfigFromEnvironment() {
  Config c;
  if (const char* e = Var("HF_ENDPOINT")) {
    std::string ep = Trim(e);
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    if (Status s = CheckEndpoint(ep); !s.ok()) return s.WithNote("HF_ENDPOINT");
    c.endpoint = ep;
  }
  if (const char* v = Var("HF_HUB_OFFLINE")) c.offline = IsTruthy(v);
  if (const char* t = Var("HF_TOKEN")) {
    c.token = Trim(t);
  } else if (const char* t2 = Var("HUGGING_FACE_HUB_TOKEN")) {
    c.token = Trim(t2);
  } else if (const char* p = Var("HF_TOKEN_PATH")) {
    c.token = ReadTokenFile(p);
  } else if (const char* home = Var("HF_HOME")) {
    c.token = ReadTokenFile(std::string(home) + "/token");
  } else if (const char* xdg = Var("XDG_CACHE_HOME")) {
    c.token = ReadTokenFile(std::string(xdg) + "/huggingface/token");
  } else if (const char* h = Var("HOME")) {
    c.token = ReadTokenFile(std::string(h) + "/.cache/huggingface/token");
  }
  if (const char* v = Var("HF_HUB_CACHE") ? Var("HF_HUB_CACHE") : Var("HUGGINGFACE_HUB_CACHE")) {
    c.hf_cache = v;
  } else if (const char* home = Var("HF_HOME")) {
    c.hf_cache = std::string(home) + "/hub";
  } else if (const char* xdg = Var("XDG_CACHE_HOME")) {
    c.hf_cache = std::string(xdg) + "/huggingface/hub";
  } else if (const char* h = Var("HOME")) {
    c.hf_cache = std::string(h) + "/.cache/huggingface/hub";
  }
  for (const char* name : {"CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const char* v = Var(name);
    if (!v) continue;
    struct stat st;
    if (::stat(v, &st) != 0 || !S_ISREG(st.st_mode) || ::access(v, R_OK) != 0)
      return Bad(name, v, Status::InvalidArgument("not a readable file of PEM certificates"));
    c.ca_file = v;
    break;
  }
  if (const char* v = Var("SSL_CERT_DIR")) {
    struct stat st;
    if (::stat(v, &st) != 0 || !S_ISDIR(st.st_mode))
      return Bad("SSL_CERT_DIR", v, Status::InvalidArgument("not a directory"));
    c.ca_dir = v;
  }
  // Proxies: the lower-case name first (curl and Python read it first), then the upper-case
  // one (Python's requests reads HTTP_PROXY too; curl does not, for CGI's sake).
  struct ProxyVar {
    const char* lower;
    const char* upper;
    std::string* value;
    std::string* from;
  };
  Config::Proxies& px = c.proxy;
  for (const ProxyVar& pv : {ProxyVar{"http_proxy", "HTTP_PROXY", &px.http, &px.http_from},
                             ProxyVar{"https_proxy", "HTTPS_PROXY", &px.https, &px.https_from},
                             ProxyVar{"all_proxy", "ALL_PROXY", &px.all, &px.all_from}}) {
    const char* name = Var(pv.lower) ? pv.lower : pv.upper;
    const char* v = Var(name);
    if (!v) continue;
    if (Status s = CheckProxy(name, v); !s.ok()) return s;
    *pv.value = Trim(v);
    *pv.from = name;
  }
  if (const char* v = Var("no_proxy") ? Var("no_proxy") : Var("NO_PROXY")) px.no_proxy = v;
  if (const char* v = Var("MODELSYNC_CHUNK_BYTES")) {
    auto b = ParseBytes(v);
    if (!b.ok() || *b == 0) return Bad("MODELSYNC_CHUNK_BYTES", v, b.ok() ? Status::InvalidArgument("zero") : b.status());
    c.chunk_bytes = *b;
  }
  if (const char* v = Var("MODELSYNC_SMALL_FILE_BYTES")) {
    auto b = ParseBytes(v);
    if (!b.ok()) return Bad("MODELSYNC_SMALL_FILE_BYTES", v, b.status());
    c.small_file_bytes = *b;
  }
  if (const char* v = Var("MODELSYNC_STALL_TIMEOUT")) {
    auto d = ParseDuration(v);
    if (!d.ok() || d->count() <= 0)
      return Bad("MODELSYNC_STALL_TIMEOUT", v, d.ok() ? Status::InvalidArgument("not positive") : d.status());
    c.stall_timeout = *d;
  }
  if (const char* v = Var("MODELSYNC_HUB_ATTEMPTS")) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1 || n > 1000)
      return Bad("MODELSYNC_HUB_ATTEMPTS", v, Status::InvalidArgument("a whole number from 1 to 1000"));
    c.hub_attempts = static_cast<int>(n);
  }
  return c;
}

}  // namespace modelsync::engine
