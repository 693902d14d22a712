// The C API (include/modelsync/modelsync.h) over the engine's public headers, as the CLI is.
// No exception crosses the boundary: every entry point catches and reports.
#include "modelsync/modelsync.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/units.h"
#include "engine/add_local.h"
#include "engine/catalog.h"
#include "engine/daemon.h"
#include "engine/diff.h"
#include "engine/env.h"
#include "engine/event_format.h"
#include "engine/inspect.h"
#include "engine/journal.h"
#include "engine/pull.h"
#include "engine/recovery.h"
#include "engine/repo_ref.h"
#include "engine/report_json.h"
#include "engine/status.h"
#include "engine/version.h"
#include "engine/watch.h"
#include "proto/events.pb.h"

using modelsync::Result;
using modelsync::Status;
using modelsync::StatusCode;
namespace engine = modelsync::engine;
using nlohmann::json;

struct ms_config {
  engine::Config config;
  uint64_t max_rate = 0;
  int connections = 0;
  bool no_wait = false;
};

struct ms_root {
  std::string path;
  ms_config config;
  std::atomic<uint64_t> max_rate{0};
  // LMDB allows one open of a log per process (storage/event_log.h): every call on a root
  // path takes this mutex, shared by every handle of that path in the process, so calls from
  // several threads run one at a time instead of failing with "already open".
  std::shared_ptr<std::mutex> calls;
};

struct ms_cancel {
  std::atomic<bool> fired{false};
};

struct ms_pull_options {
  std::string revision, model_id;
  std::vector<std::string> include, exclude;
  bool any_format = false;
  ms_event_fn fn = nullptr;
  void* user = nullptr;
  ms_cancel* cancel = nullptr;
};

struct ms_pull_result {
  engine::PullSummary summary;
  std::string ref, json;
};

namespace {

struct LastError {
  std::string message, kind;
  long detail = 0;
};
thread_local LastError last_error;

void ClearError() {
  last_error.message.clear();
  last_error.kind.clear();
  last_error.detail = 0;
}

ms_code CodeOf(const Status& s) {
  if (s.ok()) return MS_OK;
  if (s.code() == StatusCode::kCancelled) return MS_ERR_CANCELLED;
  return static_cast<ms_code>(modelsync::ExitClass(s));
}

ms_code Fail(const Status& s) {
  last_error.message = s.message();
  last_error.kind = std::string(modelsync::StatusCodeName(s.code()));
  last_error.detail = s.detail();
  return CodeOf(s);
}

ms_code Invalid(const std::string& message) { return Fail(Status::InvalidArgument(message)); }

// Runs body, turning an escaping exception (out of memory, a bug) into an error.
template <typename F>
ms_code Guard(F&& body) {
  ClearError();
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(Status::IOError("out of memory"));
  } catch (const std::exception& e) {
    return Fail(Status::Permanent(std::string("internal error: ") + e.what()));
  } catch (...) {
    return Fail(Status::Permanent("internal error"));
  }
}

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

// Pull's observer, as ms_events.
class EventBridge final : public engine::PullObserver {
 public:
  EventBridge(ms_event_fn fn, void* user) : fn_(fn), user_(user) {}
  void OnWaitingForLock(const std::string& message) override {
    ms_event e = Blank(MS_EVENT_WAITING);
    e.message = message.c_str();
    Send(e);
  }
  void OnResolved(const std::string& repo, const std::string& ref, const std::string& commit,
                  uint64_t files, uint64_t bytes_total, uint64_t bytes_to_fetch) override {
    ms_event e = Blank(MS_EVENT_RESOLVED);
    e.repo = repo.c_str();
    e.ref = ref.c_str();
    e.commit = commit.c_str();
    e.files_total = files;
    e.bytes_total = bytes_total;
    e.bytes_to_fetch = bytes_to_fetch;
    Send(e);
  }
  void OnProgress(uint64_t done, uint64_t total, uint64_t files_done,
                  uint64_t files_total) override {
    ms_event e = Blank(MS_EVENT_PROGRESS);
    e.bytes_done = done;
    e.bytes_total = total;
    e.files_done = files_done;
    e.files_total = files_total;
    Send(e);
  }
  void OnFileDone(const std::string& path, uint64_t size, bool fetched) override {
    ms_event e = Blank(MS_EVENT_FILE_DONE);
    e.path = path.c_str();
    e.size = size;
    e.fetched = fetched ? 1 : 0;
    Send(e);
  }
  void OnRetry(const std::string& message, std::chrono::milliseconds delay) override {
    ms_event e = Blank(MS_EVENT_RETRY);
    e.message = message.c_str();
    e.delay_ms = static_cast<uint64_t>(delay.count());
    Send(e);
  }
  void OnWarning(const std::string& message) override {
    ms_event e = Blank(MS_EVENT_WARNING);
    e.message = message.c_str();
    Send(e);
  }

 private:
  static ms_event Blank(ms_event_kind kind) {
    ms_event e;
    std::memset(&e, 0, sizeof e);
    e.kind = kind;
    e.repo = e.ref = e.commit = e.path = e.message = "";
    return e;
  }
  void Send(const ms_event& e) {
    if (fn_ != nullptr) fn_(&e, user_);
  }
  ms_event_fn fn_;
  void* user_;
};

engine::PullOptions BaseOptions(ms_root* root) {
  engine::PullOptions po;
  po.root = root->path;
  po.connections = root->config.connections;
  po.wait_for_lock = !root->config.no_wait;
  po.max_rate = &root->max_rate;
  return po;
}

}  // namespace

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

const char* ms_last_error(void) { return last_error.message.c_str(); }
const char* ms_last_error_kind(void) { return last_error.kind.c_str(); }
long ms_last_error_detail(void) { return last_error.detail; }
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

// ---- Pull ----

ms_code ms_pull_options_new(ms_pull_options** out) {
  return Guard([&] {
    if (out == nullptr) return Invalid("ms_pull_options_new: out is NULL");
    *out = new ms_pull_options();
    return MS_OK;
  });
}

ms_code ms_pull_options_set(ms_pull_options* o, ms_pull_option option, const char* value) {
  return Guard([&] {
    if (o == nullptr || value == nullptr) return Invalid("ms_pull_options_set: options or value is NULL");
    const std::string v = value;
    switch (option) {
      case MS_PULL_REVISION:
        if (v.empty()) return Invalid("MS_PULL_REVISION is empty: give a branch, tag or commit");
        o->revision = v;
        return MS_OK;
      case MS_PULL_MODEL_ID:
        o->model_id = v;
        return MS_OK;
      case MS_PULL_INCLUDE:
        o->include.push_back(v);
        return MS_OK;
      case MS_PULL_EXCLUDE:
        o->exclude.push_back(v);
        return MS_OK;
      case MS_PULL_ANY_FORMAT:
        o->any_format = engine::IsTruthy(v);
        return MS_OK;
    }
    return Invalid("unknown pull option " + std::to_string(static_cast<int>(option)));
  });
}

void ms_pull_options_on_event(ms_pull_options* o, ms_event_fn fn, void* user) {
  if (o == nullptr) return;
  o->fn = fn;
  o->user = user;
}
void ms_pull_options_cancel(ms_pull_options* o, ms_cancel* cancel) {
  if (o) o->cancel = cancel;
}
void ms_pull_options_free(ms_pull_options* o) { delete o; }

ms_code ms_pull(ms_root* root, const char* repo, const ms_pull_options* options,
                ms_pull_result** out) {
  return Guard([&] {
    if (out) *out = nullptr;
    if (root == nullptr) return Invalid("ms_pull: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    const ms_pull_options defaults;
    const ms_pull_options& o = options ? *options : defaults;
    auto named = Named(root, repo);
    if (!named.ok()) return Fail(named.status());
    if (!o.revision.empty() && !named->revision.empty() && o.revision != named->revision) {
      return Invalid("'" + Str(repo) + "' names revision " + named->revision +
                     " but MS_PULL_REVISION says " + o.revision + ": give one");
    }
    engine::PullOptions po = BaseOptions(root);
    po.repo = named->repo;
    po.revision = !o.revision.empty() ? o.revision
                  : !named->revision.empty() ? named->revision
                                             : "main";
    po.model_id = o.model_id;
    po.include = o.include;
    po.exclude = o.exclude;
    po.any_format = o.any_format;
    if (o.cancel) po.cancel = &o.cancel->fired;
    EventBridge bridge(o.fn, o.user);
    auto r = engine::Pull(EnvOf(root), po, &bridge);
    if (!r.ok()) return Fail(r.status());
    if (out) {
      auto res = std::make_unique<ms_pull_result>();
      res->summary = *r;
      res->ref = po.revision;
      res->json = engine::PullDoneJson(*r).dump(-1, ' ', false, json::error_handler_t::replace);
      *out = res.release();
    }
    return MS_OK;
  });
}

const char* ms_pull_result_string(const ms_pull_result* r, ms_pull_field field) {
  if (r == nullptr) return "";
  switch (field) {
    case MS_RESULT_REPO: return r->summary.repo.c_str();
    case MS_RESULT_REF: return r->ref.c_str();
    case MS_RESULT_COMMIT: return r->summary.commit.c_str();
    case MS_RESULT_MODEL_DIR: return r->summary.model_dir.c_str();
    case MS_RESULT_MARKER: return r->summary.marker_path.c_str();
    case MS_RESULT_MARKER_NOTE: return r->summary.marker_note.c_str();
    default: return "";
  }
}

uint64_t ms_pull_result_number(const ms_pull_result* r, ms_pull_field field) {
  if (r == nullptr) return 0;
  switch (field) {
    case MS_RESULT_FILES: return r->summary.files;
    case MS_RESULT_BYTES_TOTAL: return r->summary.bytes_total;
    case MS_RESULT_BYTES_FETCHED: return r->summary.bytes_fetched;
    case MS_RESULT_BYTES_REUSED: return r->summary.bytes_reused;
    case MS_RESULT_UP_TO_DATE: return r->summary.up_to_date ? 1 : 0;
    case MS_RESULT_MARKER_WRITTEN: return r->summary.marker_written ? 1 : 0;
    default: return 0;
  }
}

const char* ms_pull_result_json(const ms_pull_result* r) { return r ? r->json.c_str() : "{}"; }
void ms_pull_result_free(ms_pull_result* r) { delete r; }

// ---- Reading the root ----

ms_code ms_ls_json(ms_root* root, char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_ls_json: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    if (!IsRoot(root->path)) return Out(engine::LsJson(root->path, engine::StatusReport()), json_out);
    auto r = engine::ReadStatus(EnvOf(root), root->path, "");
    if (!r.ok()) return Fail(r.status());
    return Out(engine::LsJson(root->path, *r), json_out);
  });
}

ms_code ms_status_json(ms_root* root, const char* repo, char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_status_json: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    std::string filter;
    if (repo != nullptr) {
      auto named = Named(root, repo);
      if (!named.ok()) return Fail(named.status());
      filter = named->repo;
    }
    const bool offline = root->config.config.offline;
    if (!IsRoot(root->path))
      return Out(engine::StatusJson(root->path, engine::StatusReport(), nullptr, offline), json_out);
    auto r = engine::ReadStatus(EnvOf(root), root->path, filter);
    if (!r.ok()) return Fail(r.status());
    return Out(engine::StatusJson(root->path, *r, nullptr, offline), json_out);
  });
}

ms_code ms_inspect_json(ms_root* root, const char* repo, char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_inspect_json: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    auto named = Named(root, repo);
    if (!named.ok()) return Fail(named.status());
    auto r = engine::Inspect(EnvOf(root), root->path, named->repo);
    if (!r.ok()) return Fail(r.status());
    return Out(engine::InspectJson(root->path, *r), json_out);
  });
}

ms_code ms_catalog_json(char** json_out) {
  return Guard([&] {
    json all = json::array();
    for (const auto& e : engine::Catalog()) all.push_back(engine::CatalogEntryJson(e));
    return Out(all, json_out);
  });
}

ms_code ms_add_local(ms_root* root, const char* dir, const char* model_id, const char* repo,
                     char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_add_local: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    engine::AddLocalOptions o;
    o.root = root->path;
    o.dir = Str(dir);
    o.model_id = Str(model_id);
    o.repo = Str(repo);
    if (o.dir.empty() || o.model_id.empty())
      return Invalid("ms_add_local: give the model directory and a model id (the marker's name)");
    auto r = engine::AddLocal(EnvOf(root), o);
    if (!r.ok()) return Fail(r.status());
    return Out(engine::AddLocalJson(*r, o.model_id), json_out);
  });
}

ms_code ms_log(ms_root* root, uint64_t from_seq, const char* repo, int64_t since_ms,
               ms_line_fn fn, void* user) {
  return Guard([&] {
    if (root == nullptr) return Invalid("ms_log: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    if (fn == nullptr) return Invalid("ms_log: no line callback given");
    std::string only;
    if (repo != nullptr) {
      auto named = Named(root, repo);
      if (!named.ok()) return Fail(named.status());
      only = named->repo;
    }
    const uint64_t from = from_seq == 0 ? 1 : from_seq;
    std::map<uint64_t, std::string> transfers;  // transfer id -> repo, for the repo filter
    bool stopped = false;
    auto emit = [&](const std::string& line) {
      if (fn(line.c_str(), user) != 0) stopped = true;
    };
    Status s = engine::Journal::ScanLog(
        root->path, only.empty() ? from : 1,  // a filter learns transfers from the start
        [&](uint64_t seq, const modelsync::v1::Event& e) {
          if (stopped) return Status::Cancelled("stopped by the caller");
          if (!only.empty() && engine::RepoOfEvent(e, &transfers) != only) return Status::Ok();
          if (seq < from || e.time_ms() < since_ms) return Status::Ok();
          emit(engine::EventToJson(seq, e).dump(-1, ' ', false,
                                                nlohmann::ordered_json::error_handler_t::replace));
          return Status::Ok();
        },
        [&](uint64_t first, uint64_t last) {
          if (stopped) return Status::Cancelled("stopped by the caller");
          if (last < from) return Status::Ok();
          first = std::max(first, from);
          emit(json({{"compacted", {{"first", first}, {"last", last}, {"events", last - first + 1}}}})
                   .dump());
          return Status::Ok();
        });
    if (!s.ok() && !(stopped && s.IsCancelled())) return Fail(s);
    return MS_OK;
  });
}

ms_code ms_daemon_request(ms_root* root, const char* request, char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_daemon_request: root is NULL");
    const std::string r = Str(request);
    if (r != "status" && r != "sync-now" && r != "reload" && r.rfind("rate ", 0) != 0)
      return Invalid("ms_daemon_request: the request is \"status\", \"sync-now\", \"reload\" "
                     "or \"rate <bytes/s>\", not '" + r + "'");
    auto reply = engine::DaemonRequest(root->path, r);
    if (!reply.ok()) return Fail(reply.status());
    if (json_out) *json_out = Dup(*reply);
    return MS_OK;
  });
}

ms_code ms_diff_json(ms_root* root, const char* repo, const char* revision, int local,
                     char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_diff_json: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    auto named = Named(root, repo);
    if (!named.ok()) return Fail(named.status());
    if (revision != nullptr && !named->revision.empty() && named->revision != revision) {
      return Invalid("'" + Str(repo) + "' names revision " + named->revision +
                     " but the revision argument says " + revision + ": give one");
    }
    engine::DiffOptions d;
    d.root = root->path;
    d.repo = named->repo;
    d.revision = revision ? revision : named->revision;
    d.local = local != 0;
    auto r = engine::RunDiff(EnvOf(root), d);
    if (!r.ok()) return Fail(r.status());
    return Out(engine::DiffJson(*r), json_out);
  });
}

// ---- Keeping it true ----

ms_code ms_verify(ms_root* root, const char* repo, int repair, ms_cancel* cancel,
                  char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_verify: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    engine::VerifyOptions vo;
    vo.root = root->path;
    if (repo != nullptr) {
      auto named = Named(root, repo);
      if (!named.ok()) return Fail(named.status());
      vo.repo = named->repo;
    }
    vo.repair = repair != 0;
    if (cancel) vo.cancel = &cancel->fired;
    auto r = engine::Verify(EnvOf(root), vo);
    if (!r.ok()) return Fail(r.status());
    json issues = json::array();
    for (const auto& i : r->issues) {
      issues.push_back({{"kind", engine::VerifyIssueName(i.kind)}, {"repo", i.repo},
                        {"path", i.path}, {"detail", i.detail}});
    }
    const bool still_damaged = r->damaged() && !r->repaired;
    if (json_out) {
      Out({{"repos", r->repos}, {"files", r->files}, {"bytes_hashed", r->bytes_hashed},
           {"damaged", still_damaged}, {"repaired", r->repaired},
           {"bytes_fetched", r->bytes_fetched}, {"issues", issues},
           {"repair_errors", r->repair_errors}},
          json_out);
    }
    if (still_damaged) {
      std::string what = std::to_string(r->issues.size()) + " problem(s) found";
      if (!r->issues.empty()) {
        const auto& i = r->issues.front();
        what += ", first: " + i.repo + ": " + i.path + " " + engine::VerifyIssueName(i.kind) +
                (i.detail.empty() ? "" : " (" + i.detail + ")");
      }
      return Fail(Status::Integrity(what + (repair ? "; the repair did not fix it"
                                                   : "; verify with repair fetches it again")));
    }
    return MS_OK;
  });
}

ms_code ms_remove(ms_root* root, const char* repo) {
  return Guard([&] {
    if (root == nullptr) return Invalid("ms_remove: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    auto named = Named(root, repo);
    if (!named.ok()) return Fail(named.status());
    engine::RemoveOptions ro;
    ro.root = root->path;
    ro.repo = named->repo;
    ro.wait_for_lock = !root->config.no_wait;
    auto r = engine::Remove(EnvOf(root), ro);
    return r.ok() ? MS_OK : Fail(r.status());
  });
}

ms_code ms_gc(ms_root* root, int dry_run, uint64_t* bytes_freed) {
  return Guard([&] {
    if (bytes_freed) *bytes_freed = 0;
    if (root == nullptr) return Invalid("ms_gc: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    engine::GcOptions go;
    go.root = root->path;
    go.dry_run = dry_run != 0;
    go.wait_for_lock = !root->config.no_wait;
    auto r = engine::Gc(EnvOf(root), go);
    if (!r.ok()) return Fail(r.status());
    if (bytes_freed) *bytes_freed = r->bytes_freed;
    return MS_OK;
  });
}

ms_code ms_rebuild(ms_root* root, int fetch) {
  return Guard([&] {
    if (root == nullptr) return Invalid("ms_rebuild: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    engine::RebuildOptions ro;
    ro.root = root->path;
    ro.fetch = fetch != 0;
    ro.wait_for_lock = !root->config.no_wait;
    auto r = engine::Rebuild(EnvOf(root), ro);
    if (!r.ok()) return Fail(r.status());
    if (!r->complete()) {
      std::string what;
      for (const auto& repo : r->repos) {
        if (!repo.error.empty()) what += repo.repo + ": " + repo.error + "; ";
        else if (!repo.missing.empty())
          what += repo.repo + ": " + std::to_string(repo.missing.size()) + " file(s) missing; ";
      }
      return Fail(Status::Integrity("rebuild left models incomplete (" + what +
                                    "rebuild with fetch downloads what is missing)"));
    }
    return MS_OK;
  });
}

// ---- Watching ----

ms_code ms_track(ms_root* root, const char* repo, const char* revision, const char* model_id) {
  return Guard([&] {
    if (root == nullptr) return Invalid("ms_track: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    auto named = Named(root, repo);
    if (!named.ok()) return Fail(named.status());
    modelsync::v1::RepoTracked t;
    t.set_repo(named->repo);
    t.set_ref(revision ? revision : !named->revision.empty() ? named->revision : "main");
    t.set_model_id(Str(model_id));
    t.set_every_ms(3600 * 1000);  // the command line's default, 1h
    Status s = engine::Track(EnvOf(root), root->path, t);
    return s.ok() ? MS_OK : Fail(s);
  });
}

ms_code ms_untrack(ms_root* root, const char* repo) {
  return Guard([&] {
    if (root == nullptr) return Invalid("ms_untrack: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    auto named = Named(root, repo);
    if (!named.ok()) return Fail(named.status());
    Status s = engine::Untrack(EnvOf(root), root->path, named->repo);
    return s.ok() ? MS_OK : Fail(s);
  });
}

ms_code ms_sync(ms_root* root, ms_event_fn fn, void* user, ms_cancel* cancel, char** json_out) {
  return Guard([&] {
    if (json_out) *json_out = nullptr;
    if (root == nullptr) return Invalid("ms_sync: root is NULL");
    std::lock_guard<std::mutex> one_call(*root->calls);
    const engine::Env env = EnvOf(root);
    json results = json::array();
    if (!IsRoot(root->path)) return Out(results, json_out);
    auto list = engine::ListTracked(env, root->path);
    if (!list.ok()) return Fail(list.status());
    Status first;
    for (const auto& t : *list) {
      engine::PullOptions po = engine::TrackedPullOptions(root->path, t);
      po.connections = root->config.connections;
      po.wait_for_lock = !root->config.no_wait;
      po.max_rate = &root->max_rate;
      if (cancel) po.cancel = &cancel->fired;
      EventBridge bridge(fn, user);
      auto r = engine::Pull(env, po, &bridge);
      json j = {{"repo", t.repo()}, {"ok", r.ok()}};
      if (r.ok()) {
        j.update({{"commit", r->commit}, {"up_to_date", r->up_to_date && !r->offline},
                  {"checked", !r->offline}, {"bytes_fetched", r->bytes_fetched}});
      } else {
        j.update({{"code", std::string(modelsync::StatusCodeName(r.status().code()))},
                  {"message", r.status().message()}});
        if (first.ok()) first = r.status().With(t.repo());
      }
      results.push_back(std::move(j));
      if (!r.ok() && r.status().IsCancelled()) break;
    }
    Out(results, json_out);
    return first.ok() ? MS_OK : Fail(first);
  });
}

}  // extern "C"
