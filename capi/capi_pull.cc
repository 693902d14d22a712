// The C API: pull (options, events, result) and sync, one pass over the watch list.
#include <cstring>

#include "capi_internal.h"
#include "engine/daemon.h"
#include "engine/report_json.h"
#include "engine/watch.h"

using namespace modelsync::capi;  // NOLINT: the entry points below are global C functions
using modelsync::Status;

namespace {

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

// What the root's configuration says about every pull made through it.
engine::PullOptions WithRootSettings(ms_root* root, engine::PullOptions po) {
  po.root = root->path;
  po.connections = root->config.connections;
  po.wait_for_lock = !root->config.no_wait;
  po.max_rate = &root->max_rate;
  return po;
}

}  // namespace

extern "C" {

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
    engine::PullOptions po = WithRootSettings(root, {});
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
      engine::PullOptions po =
          WithRootSettings(root, engine::TrackedPullOptions(root->path, t));
      if (cancel) po.cancel = &cancel->fired;
      EventBridge bridge(fn, user);
      bool converted = false;
      auto r = engine::PullTracked(env, po, t, &bridge, &converted);
      json j = {{"repo", t.repo}, {"ok", r.ok()}};
      if (r.ok()) {
        j.update({{"commit", r->commit}, {"up_to_date", r->up_to_date && !r->offline},
                  {"checked", !r->offline}, {"bytes_fetched", r->bytes_fetched},
                  {"converted", converted}});
      } else {
        j.update({{"code", std::string(modelsync::StatusCodeName(r.status().code()))},
                  {"message", r.status().message()}});
        if (first.ok()) first = r.status().With(t.repo);
      }
      results.push_back(std::move(j));
      if (!r.ok() && r.status().IsCancelled()) break;
    }
    Out(results, json_out);
    return first.ok() ? MS_OK : Fail(first);
  });
}

}  // extern "C"
