// The C API (include/modelsync/modelsync.h) over the engine's public headers, as the CLI is:
// version, errors, configuration, roots, cancellation. No exception crosses the boundary:
// every entry point catches and reports (Guard).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "base/units.h"
#include "capi_internal.h"
#include "engine/version.h"

namespace modelsync::capi {
namespace {

struct LastError {
  std::string message, kind;
  long detail = 0;
};
thread_local LastError last_error;

}  // namespace

const std::string& LastErrorMessage() { return last_error.message; }
const std::string& LastErrorKind() { return last_error.kind; }
long LastErrorDetail() { return last_error.detail; }


void ClearError() {
  last_error.message.clear();
  last_error.kind.clear();
  last_error.detail = 0;
}

namespace {

ms_code CodeOf(const Status& s) {
  if (s.ok()) return MS_OK;
  if (s.code() == StatusCode::kCancelled) return MS_ERR_CANCELLED;
  return static_cast<ms_code>(modelsync::ExitClass(s));
}

}  // namespace

ms_code Fail(const Status& s) {
  last_error.message = s.message();
  last_error.kind = std::string(modelsync::StatusCodeName(s.code()));
  last_error.detail = s.detail();
  return CodeOf(s);
}

ms_code Invalid(const std::string& message) { return Fail(Status::InvalidArgument(message)); }

char* Dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size() + 1);
  return p;
}

std::string Str(const char* s) { return s ? std::string(s) : std::string(); }

ms_code Out(const json& j, char** json_out) {
  if (json_out) *json_out = Dup(j.dump(-1, ' ', false, json::error_handler_t::replace));
  return MS_OK;
}

engine::Env EnvOf(const ms_root* root) { return engine::RealEnv(root->config.config); }

// The call mutex of a root path, shared by every ms_root of that path in this process.
std::shared_ptr<std::mutex> CallMutexFor(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<std::mutex>> by_path;
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = by_path.begin(); it != by_path.end();) {  // forget closed roots
    it = it->second.expired() ? by_path.erase(it) : std::next(it);
  }
  auto& slot = by_path[path];
  auto m = slot.lock();
  if (!m) {
    m = std::make_shared<std::mutex>();
    slot = m;
  }
  return m;
}

bool IsRoot(const std::string& path) {
  struct stat st;
  return ::stat((path + "/.modelsync").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The repo a text names in this root (org/name, org/name@rev, a URL, a model id).
Result<engine::NamedRepo> Named(const ms_root* root, const char* text) {
  if (text == nullptr || *text == '\0')
    return Status::InvalidArgument("no repository given: pass \"org/name\"");
  return engine::ResolveRepoArgument(EnvOf(root), root->path, text);
}

}  // namespace modelsync::capi

using namespace modelsync::capi;  // NOLINT: the entry points below are global C functions
using modelsync::Status;

extern "C" {


// engine::Version() views a string literal (the project's version): NUL-terminated.
const char* ms_version(void) { return engine::Version().data(); }
int ms_api_version(void) { return MS_API_VERSION; }

const char* ms_code_name(ms_code code) {
  switch (code) {
    case MS_OK: return "ok";
    case MS_ERR_OTHER: return "other";
    case MS_ERR_INVALID_ARGUMENT: return "invalid_argument";
    case MS_ERR_DAMAGED: return "damaged";
    case MS_ERR_LOCKED: return "locked";
    case MS_ERR_NEWER_FORMAT: return "newer_format";
    case MS_ERR_NO_SPACE: return "no_space";
    case MS_ERR_NETWORK: return "network";
    case MS_ERR_NOT_FOUND: return "not_found";
    case MS_ERR_CANCELLED: return "cancelled";
  }
  return "unknown";
}

const char* ms_last_error(void) { return LastErrorMessage().c_str(); }
const char* ms_last_error_kind(void) { return LastErrorKind().c_str(); }
long ms_last_error_detail(void) { return LastErrorDetail(); }
void ms_free(void* p) { std::free(p); }

// ---- Configuration ----

ms_code ms_config_new(int from_environment, ms_config** out) {
  return Guard([&] {
    if (out == nullptr) return Invalid("ms_config_new: out is NULL");
    *out = nullptr;
    auto c = std::make_unique<ms_config>();
    if (from_environment) {
      auto env = engine::ConfigFromEnvironment();
      if (!env.ok()) return Fail(env.status());
      c->config = *env;
    }
    *out = c.release();
    return MS_OK;
  });
}

ms_code ms_config_set(ms_config* c, ms_option option, const char* value) {
  return Guard([&] {
    if (c == nullptr || value == nullptr) return Invalid("ms_config_set: config or value is NULL");
    const std::string v = value;
    engine::Config& k = c->config;
    switch (option) {
      case MS_OPT_ENDPOINT: {
        std::string ep = v;
        while (!ep.empty() && ep.back() == '/') ep.pop_back();
        if (Status s = engine::CheckEndpoint(ep); !s.ok()) return Fail(s);
        k.endpoint = ep;
        return MS_OK;
      }
      case MS_OPT_TOKEN:
        k.token = v;
        return MS_OK;
      case MS_OPT_OFFLINE:
        k.offline = engine::IsTruthy(v);
        return MS_OK;
      case MS_OPT_MAX_RATE: {
        auto b = modelsync::ParseBytes(v);
        if (!b.ok()) return Fail(b.status().With("MS_OPT_MAX_RATE"));
        c->max_rate = *b;
        return MS_OK;
      }
      case MS_OPT_CONNECTIONS: {
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < 0 || n > 64)
          return Invalid("MS_OPT_CONNECTIONS must be a whole number from 0 to 64, not '" + v + "'");
        c->connections = static_cast<int>(n);
        return MS_OK;
      }
      case MS_OPT_CA_BUNDLE: {
        struct stat st;
        if (!v.empty() && (::stat(v.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
                           ::access(v.c_str(), R_OK) != 0))
          return Invalid("MS_OPT_CA_BUNDLE '" + v + "' is not a readable file of PEM certificates");
        k.ca_file = v;
        return MS_OK;
      }
      case MS_OPT_HTTP_PROXY:
      case MS_OPT_HTTPS_PROXY: {
        const bool https = option == MS_OPT_HTTPS_PROXY;
        const std::string name = https ? "MS_OPT_HTTPS_PROXY" : "MS_OPT_HTTP_PROXY";
        if (Status s = engine::CheckProxy(name, v); !s.ok()) return Fail(s);
        (https ? k.proxy.https : k.proxy.http) = v;
        (https ? k.proxy.https_from : k.proxy.http_from) = name;
        return MS_OK;
      }
      case MS_OPT_NO_PROXY:
        k.proxy.no_proxy = v;
        return MS_OK;
      case MS_OPT_NO_WAIT:
        c->no_wait = engine::IsTruthy(v);
        return MS_OK;
      case MS_OPT_STALL_TIMEOUT: {
        auto d = modelsync::ParseDuration(v);
        if (!d.ok() || d->count() <= 0)
          return Invalid("MS_OPT_STALL_TIMEOUT must be a positive duration (20s, 500ms), not '" + v + "'");
        k.stall_timeout = *d;
        return MS_OK;
      }
    }
    return Invalid("unknown option " + std::to_string(static_cast<int>(option)));
  });
}

void ms_config_free(ms_config* config) { delete config; }

// ---- Roots ----

ms_code ms_root_open(const char* path, const ms_config* config, ms_root** out) {
  return Guard([&] {
    if (out == nullptr) return Invalid("ms_root_open: out is NULL");
    *out = nullptr;
    std::string p = Str(path);
    if (p.empty()) return Invalid("ms_root_open: no path given");
    if (p[0] != '/') {
      char cwd[4096];
      if (::getcwd(cwd, sizeof cwd) == nullptr)
        return Fail(Status::FromErrno(errno, "the current directory"));
      p = std::string(cwd) + "/" + p;
    }
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    auto r = std::make_unique<ms_root>();
    r->path = p;
    if (config != nullptr) r->config = *config;
    r->max_rate.store(r->config.max_rate);
    r->calls = CallMutexFor(p);
    *out = r.release();
    return MS_OK;
  });
}

void ms_root_close(ms_root* root) { delete root; }
const char* ms_root_path(const ms_root* root) { return root ? root->path.c_str() : ""; }

// ---- Cancellation ----

ms_code ms_cancel_new(ms_cancel** out) {
  return Guard([&] {
    if (out == nullptr) return Invalid("ms_cancel_new: out is NULL");
    *out = new ms_cancel();
    return MS_OK;
  });
}
void ms_cancel_fire(ms_cancel* c) {
  if (c) c->fired.store(true);
}
void ms_cancel_reset(ms_cancel* c) {
  if (c) c->fired.store(false);
}
int ms_cancel_fired(const ms_cancel* c) { return c && c->fired.load() ? 1 : 0; }
void ms_cancel_free(ms_cancel* c) { delete c; }

}  // extern "C"
