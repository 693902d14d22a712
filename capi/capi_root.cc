// The C API: reading a root (ls, status, inspect, catalog, log, diff, the daemon's state),
// keeping it true (verify, remove, gc, rebuild, add-local) and its watch list.
#include <algorithm>
#include <map>

#include "capi_internal.h"
#include "engine/add_local.h"
#include "engine/catalog.h"
#include "engine/daemon.h"
#include "engine/diff.h"
#include "engine/inspect.h"
#include "engine/log_read.h"
#include "engine/recovery.h"
#include "engine/report_json.h"
#include "engine/status.h"
#include "engine/watch.h"

using namespace modelsync::capi;  // NOLINT: the entry points below are global C functions
using modelsync::Status;

extern "C" {

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
    bool stopped = false;
    auto emit = [&](const std::string& line) {
      if (fn(line.c_str(), user) != 0) stopped = true;
    };
    engine::LogQuery query;
    query.from = from_seq == 0 ? 1 : from_seq;
    query.repo = only;
    query.since_ms = since_ms;
    query.json = true;
    Status s = engine::ReadLog(
        root->path, query,
        [&](uint64_t, const std::string& line) {
          if (stopped) return Status::Cancelled("stopped by the caller");
          emit(line);
          return Status::Ok();
        },
        [&](uint64_t first, uint64_t last) {
          if (stopped) return Status::Cancelled("stopped by the caller");
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
    engine::Tracking t;
    t.repo = named->repo;
    t.ref = revision ? revision : !named->revision.empty() ? named->revision : "main";
    t.model_id = Str(model_id);
    t.every_ms = 3600 * 1000;  // the command line's default, 1h
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

}  // extern "C"
