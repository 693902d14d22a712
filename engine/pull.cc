#include "engine/pull.h"

#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "base/hash.h"
#include "base/units.h"
#include "engine/disk_space.h"
#include "engine/glob.h"
#include "engine/journal.h"
#include "engine/layout.h"
#include "engine/materializer.h"
#include "engine/model_check.h"
#include "engine/observe.h"
#include "engine/planner.h"
#include "engine/pull_internal.h"
#include "engine/repo_path.h"
#include "engine/transfer_runner.h"
#include "net/hub.h"
#include "net/hub_options.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"
#include "storage/partial_file.h"

namespace modelsync::engine {
namespace {

// While alive, watches *flag (every 50 ms) and calls on_set once when it becomes true: a
// cancel must also stop a Resolve that is waiting out the hub's backoff.
class CancelWatch {
 public:
  CancelWatch(const std::atomic<bool>* flag, std::function<void()> on_set) {
    if (!flag) return;
    thread_ = std::thread([this, flag, on_set = std::move(on_set)] {
      std::unique_lock<std::mutex> l(mu_);
      while (!done_) {
        if (flag->load()) {
          on_set();
          return;
        }
        cv_.wait_for(l, std::chrono::milliseconds(50));
      }
    });
  }
  ~CancelWatch() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  CancelWatch(const CancelWatch&) = delete;
  CancelWatch& operator=(const CancelWatch&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

constexpr int kDefaultConnections = 8;
constexpr uint64_t kDefaultChunk = 32ull << 20;
constexpr int kMaxRounds = 4;

using SteadyClock = std::chrono::steady_clock;

struct Ctx {
  const PullOptions& o;
  PullObserver* observer;
  std::string root;  // absolute
  std::string model_id;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<storage::Dir> root_dir;
  std::unique_ptr<storage::BlobStore> blobs;
  std::unique_ptr<storage::PartialStore> partials;
  // Model checks (issue #8): set by PreCheck, used by PostCheck.
  ManifestKind kind = ManifestKind::kSafetensors;
  PullSummary* sum = nullptr;
  uint64_t small_file_bytes = 0;  // PullInternalOptions
};

// --- Model checks (engine/model_check.h) ---------------------------------------------
// Before any fetch: refuse GGUF-only / PyTorch-only repos (unless --any-format).
Status PreCheck(Ctx& c, const std::vector<v1::FileEntry>& files) {
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f.path());
  MS_ASSIGN_OR_RETURN(c.kind, CheckManifest(c.o.repo, paths, c.o.any_format));
  if (c.kind == ManifestKind::kNoWeights && c.sum) c.sum->note = NoWeightsNote(c.o.repo);
  return Status::Ok();
}

// After verification and activation, before the marker: the model directory must load.
Status PostCheck(Ctx& c, const Plan& plan) {
  if (c.kind == ManifestKind::kNoWeights) return Status::Ok();
  std::vector<std::string> paths;
  for (const auto& f : plan.files) paths.push_back(f.path);
  auto rep = CheckModelDir(c.root + "/models/" + plan.repo, paths);
  if (!rep.ok())
    return rep.status().With(plan.repo + "@" + plan.commit.substr(0, 12) +
                             " is downloaded and verified but is not a loadable MLX model, so "
                             "no marker was written");
  if (c.sum) {
    c.sum->model_checked = true;
    c.sum->model_type = rep->model_type;
    c.sum->quantization = rep->QuantSummary();
    c.sum->tensors = rep->tensors;
    c.sum->parameters = rep->parameters;
  }
  return Status::Ok();
}
// ----------------------------------------------------------------------------------------

v1::Event SyncFailedEvent(const std::string& repo, const Status& s) {
  v1::Event e;
  auto* sf = e.mutable_sync_failed();
  sf->set_repo(repo);
  sf->set_reason(s.message());
  sf->set_code(static_cast<int>(s.code()));
  return e;
}

Result<std::string> AbsoluteRoot(const std::string& root) {
  if (root.empty()) return Status::InvalidArgument("no root given (use --root or MODELSYNC_ROOT)");
  MS_RETURN_IF_ERROR(MakeDirs(root));
  char buf[PATH_MAX];
  if (!::realpath(root.c_str(), buf)) return Status::FromErrno(errno, "resolve root " + root);
  return std::string(buf);
}

// The target files: the manifest filtered by the globs, every path validated.
Result<std::vector<v1::FileEntry>> TargetFiles(const std::vector<v1::FileEntry>& all,
                                               const PullOptions& o) {
  PathFilter filter(o.include, o.exclude);
  std::vector<v1::FileEntry> out;
  for (const auto& f : all) {
    MS_RETURN_IF_ERROR(ValidateRepoPath(f.path()).With("the hub listed an unsafe path in " +
                                                       o.repo + "; refusing to write anything"));
    if (filter.Keep(f.path())) out.push_back(f);
  }
  return out;
}

// Runs the plan's steps in planner.h order. Returns early (OK) when the plan went stale
// mid-way (a bad blob was removed): the caller plans again after every Execute anyway.
Status Execute(Ctx& c, const Plan& plan, net::Hub* hub, uint64_t* fetched) {
  Materializer mat(*c.root_dir, *c.blobs);
  std::vector<v1::Event> events;
  auto flush = [&]() -> Status {
    if (events.empty()) return Status::Ok();
    auto r = c.journal->Append(std::move(events));
    events.clear();
    return r.status();
  };
  if (plan.clean_staging) MS_RETURN_IF_ERROR(mat.CleanStaging(plan.repo));
  for (const auto& m : plan.remove_markers) {
    MS_RETURN_IF_ERROR(mat.RemoveMarker(m));
    v1::Event e;
    e.mutable_marker_removed()->set_repo(plan.repo);
    e.mutable_marker_removed()->set_model_id(m);
    events.push_back(std::move(e));
  }
  MS_RETURN_IF_ERROR(flush());
  for (const auto& b : plan.remove_blobs) MS_RETURN_IF_ERROR(c.blobs->Remove(b));
  for (uint64_t t : plan.discard_transfers) {
    v1::Event e;
    auto* tf = e.mutable_transfer_failed();
    tf->set_transfer_id(t);
    tf->set_reason("discarded: its partial file no longer matches the log");
    tf->set_code(static_cast<int>(StatusCode::kCorruption));
    tf->set_discarded(true);
    events.push_back(std::move(e));
  }
  MS_RETURN_IF_ERROR(flush());
  for (uint64_t t : plan.discard_transfers) MS_RETURN_IF_ERROR(c.partials->Remove(t));

  bool any_fetch = false;
  for (const auto& f : plan.files)
    any_fetch |= f.action == FileAction::kFetch || f.action == FileAction::kResume ||
                 (f.action == FileAction::kLink && f.verify_blob);
  if (any_fetch) {
    if (!hub)
      return Status::Offline("HF_HUB_OFFLINE is set and " + plan.repo + " needs " +
                             std::to_string(plan.fetch_bytes) +
                             " bytes from the hub: unset HF_HUB_OFFLINE to download them");
    MS_RETURN_IF_ERROR(CheckFreeSpace(*c.root_dir, plan.allocate_bytes));
    TransferRunnerOptions ro;
    ro.connections = c.o.connections > 0 ? c.o.connections : kDefaultConnections;
    ro.cancel = c.o.cancel;
    ro.small_file_bytes = c.small_file_bytes;
    uint64_t rate_set = c.o.max_rate ? c.o.max_rate->load() : 0;
    ro.on_progress = [&, rate_set](const TransferProgress& p) mutable {
      if (c.o.max_rate && c.o.max_rate->load() != rate_set) {
        rate_set = c.o.max_rate->load();
        hub->SetMaxRate(rate_set);
      }
      if (c.observer)
        c.observer->OnProgress(p.bytes_done, p.bytes_total, p.files_done, p.files_total);
    };
    if (c.observer) {
      ro.on_file_done = [&](const std::string& path, uint64_t size, bool fetched_now) {
        c.observer->OnFileDone(path, size, fetched_now);
      };
    }
    TransferRunner runner(*c.journal, *hub, *c.partials, *c.blobs, ro);
    Status s = runner.Run(plan);
    *fetched += runner.bytes_fetched();
    MS_RETURN_IF_ERROR(s);
    if (runner.replan_needed()) return Status::Ok();
  }

  if (plan.build_dir) {
    std::vector<MaterialFile> mf;
    for (const auto& f : plan.files) mf.push_back({f.path, f.content_id});
    MS_RETURN_IF_ERROR(mat.Materialize(plan.repo, mf));
  }
  if (plan.activate) {
    for (const auto& r : plan.removals) {
      v1::Event e;
      auto* fr = e.mutable_file_removed();
      fr->set_repo(plan.repo);
      fr->set_path(r);
      fr->set_commit(plan.commit);
      events.push_back(std::move(e));
    }
    for (const auto& f : plan.files) {
      v1::Event e;
      auto* fm = e.mutable_file_materialized();
      fm->set_repo(plan.repo);
      fm->set_commit(plan.commit);
      fm->set_path(f.path);
      fm->set_content_id(f.content_id);
      events.push_back(std::move(e));
    }
    v1::Event e;
    auto* ra = e.mutable_revision_activated();
    ra->set_repo(plan.repo);
    ra->set_commit(plan.commit);
    ra->set_model_id(plan.model_id);
    ra->set_ref(c.o.revision);
    for (const auto& g : c.o.include) ra->add_include(g);
    for (const auto& g : c.o.exclude) ra->add_exclude(g);
    events.push_back(std::move(e));
    MS_RETURN_IF_ERROR(flush());
  }
  if (plan.write_marker) {
    MS_RETURN_IF_ERROR(PostCheck(c, plan));
    MS_RETURN_IF_ERROR(mat.WriteMarker(plan.model_id));
    v1::Event e;
    e.mutable_marker_written()->set_repo(plan.repo);
    e.mutable_marker_written()->set_model_id(plan.model_id);
    events.push_back(std::move(e));
    MS_RETURN_IF_ERROR(flush());
  }
  return Status::Ok();
}

// Plans and executes until the disk equals the target (or kMaxRounds).
Status Converge(Ctx& c, const std::string& commit, const std::vector<v1::FileEntry>& files,
                net::Hub* hub, PullSummary* sum, bool report) {
  MS_RETURN_IF_ERROR(PreCheck(c, files));
  PlanInput in;
  in.repo = c.o.repo;
  in.commit = commit;
  in.model_id = c.model_id;
  in.files = files;
  PlanOptions po;
  po.chunk_size = c.o.chunk_bytes ? c.o.chunk_bytes : kDefaultChunk;
  for (int round = 0; round < kMaxRounds; ++round) {
    MS_ASSIGN_OR_RETURN(Observation obs, Observe(*c.root_dir, c.o.repo, {c.model_id}));
    MS_ASSIGN_OR_RETURN(Plan plan, MakePlan(in, c.journal->state(), obs, po));
    if (round == 0) {
      sum->bytes_total = plan.total_bytes;
      sum->bytes_reused = plan.present_bytes;
      sum->up_to_date = plan.NothingToDo();
      if (report && c.observer)
        c.observer->OnResolved(c.o.repo, c.o.revision, commit, files.size(), plan.total_bytes,
                               plan.fetch_bytes);
    }
    if (plan.NothingToDo()) return Status::Ok();
    MS_RETURN_IF_ERROR(Execute(c, plan, hub, &sum->bytes_fetched));
  }
  return Status::Transient("the model did not settle after " + std::to_string(kMaxRounds) +
                           " rounds; run pull again");
}

Status PullOffline(Ctx& c, PullSummary* sum) {
  const auto& st = c.journal->state();
  auto it = st.repos.find(c.o.repo);
  std::string hint = "unset HF_HUB_OFFLINE to download it";
  if (it == st.repos.end() || it->second.active_commit.empty())
    return Status::Offline("HF_HUB_OFFLINE is set and " + c.o.repo +
                           " has never been pulled into " + c.root + ": " + hint);
  const RepoState& rs = it->second;
  std::string commit = rs.active_commit;
  if (IsHex(c.o.revision, 40) && c.o.revision != commit)
    return Status::Offline("HF_HUB_OFFLINE is set and " + c.o.repo + " is at " +
                           commit.substr(0, 12) + ", not " + c.o.revision + ": " + hint);
  auto rev = rs.revisions.find(commit);
  if (rev == rs.revisions.end())
    return Status::Offline("HF_HUB_OFFLINE is set and the manifest of " + c.o.repo + "@" + commit +
                           " is not in the log: " + hint);
  MS_ASSIGN_OR_RETURN(auto files, TargetFiles(rev->second.files, c.o));
  sum->commit = commit;
  return Converge(c, commit, files, nullptr, sum, true);
}

}  // namespace

Result<PullSummary> Pull(const PullOptions& options, PullObserver* observer) {
  return PullWith(options, observer, {});
}

Result<PullSummary> PullWith(const PullOptions& options, PullObserver* observer,
                             const PullInternalOptions& internal) {
  auto t0 = SteadyClock::now();
  const PullOptions& o = options;
  MS_RETURN_IF_ERROR(ValidateRepoId(o.repo));
  net::HubOptions hopts = net::HubOptionsFromEnv();
  if (!o.endpoint.empty()) hopts.endpoint = net::NormalizeEndpoint(o.endpoint);
  // Tuning knobs for tests and benchmarks (documented in README): the range split size and
  // how long a silent connection may stall before it is retried.
  PullOptions tuned = o;
  if (const char* v = std::getenv("MODELSYNC_CHUNK_BYTES"); v && *v && !o.chunk_bytes) {
    MS_ASSIGN_OR_RETURN(tuned.chunk_bytes, ParseBytes(v));
  }
  if (const char* v = std::getenv("MODELSYNC_STALL_TIMEOUT"); v && *v) {
    MS_ASSIGN_OR_RETURN(hopts.stall_timeout, ParseDuration(v));
  }
  // Attempts per request without progress (the daemon's own backoff takes over after).
  if (const char* v = std::getenv("MODELSYNC_HUB_ATTEMPTS"); v && *v) {
    hopts.max_attempts = std::max(1, std::atoi(v));
  }
  if (o.cancel && o.cancel->load()) return Status::Cancelled("pull of " + o.repo + " cancelled");
  int conns = o.connections > 0 ? o.connections : kDefaultConnections;
  hopts.max_connections = std::max(conns, 4);
  Ctx c{tuned, observer, {}, {}, {}, {}, {}, {}, ManifestKind::kSafetensors, nullptr};
  c.model_id = o.model_id.empty() ? RepoName(o.repo) : o.model_id;
  MS_RETURN_IF_ERROR(ValidateModelId(c.model_id));

  MS_ASSIGN_OR_RETURN(c.root, AbsoluteRoot(o.root));
  JournalOptions jo;
  jo.wait_for_lock = o.wait_for_lock;
  jo.on_commit = internal.on_commit;
  c.small_file_bytes = internal.small_file_bytes;
  // Test knob: files up to this size are fetched into memory (no partial file, no range
  // events); the soak lowers it so kills land in the partial-file path with small fixtures.
  if (const char* v = std::getenv("MODELSYNC_SMALL_FILE_BYTES"); v && *v && !c.small_file_bytes) {
    MS_ASSIGN_OR_RETURN(c.small_file_bytes, ParseBytes(v));
  }
  jo.on_wait = [&](int pid) {
    if (observer)
      observer->OnWaitingForLock("root " + c.root + " is in use by pid " + std::to_string(pid) +
                                 "; waiting for it to finish (--no-wait fails instead)");
  };
  MS_ASSIGN_OR_RETURN(c.journal, Journal::Open(c.root, false, jo));
  storage::FileSystem* fs = internal.fs ? internal.fs : storage::RealFileSystem();
  MS_ASSIGN_OR_RETURN(c.root_dir, fs->OpenRoot(c.root, true));
  MS_ASSIGN_OR_RETURN(c.blobs, storage::BlobStore::Open(*c.root_dir));
  MS_ASSIGN_OR_RETURN(c.partials, storage::PartialStore::Open(*c.root_dir));

  PullSummary sum;
  c.sum = &sum;
  sum.repo = o.repo;
  sum.ref = o.revision;
  sum.model_dir = c.root + "/models/" + o.repo;
  sum.marker_path = c.root + "/" + c.model_id;

  Status s;
  if (hopts.offline) {
    s = PullOffline(c, &sum);
  } else {
    net::Hub hub(hopts);
    CancelWatch watch(o.cancel, [&hub] { hub.Stop(); });
    if (o.max_rate) hub.SetMaxRate(o.max_rate->load());
    // The manifest of a commit never changes: when the log has it, the tree is not listed.
    const RepoState* known_repo = nullptr;
    if (auto it = c.journal->state().repos.find(o.repo); it != c.journal->state().repos.end())
      known_repo = &it->second;
    auto rev = hub.Resolve(o.repo, o.revision, [&](const std::string& commit) {
      return known_repo && known_repo->revisions.count(commit) > 0;
    });
    if (rev.ok() && !rev->listed) {
      for (const auto& f : known_repo->revisions.at(rev->commit).files) rev->files.push_back(f);
    }
    if (!rev.ok()) {
      s = rev.status();
    } else {
      sum.commit = rev->commit;
      bool known = known_repo && known_repo->revisions.count(rev->commit) &&
                   known_repo->last_resolved_commit == rev->commit &&
                   known_repo->last_resolved_ref == o.revision;
      if (!known) {
        v1::Event e;
        auto* rr = e.mutable_revision_resolved();
        rr->set_repo(o.repo);
        rr->set_ref(o.revision);
        rr->set_commit(rev->commit);
        rr->set_endpoint(hopts.endpoint);
        for (const auto& f : rev->files) *rr->mutable_manifest()->add_files() = f;
        s = c.journal->Append({std::move(e)}).status();
      }
      if (s.ok()) {
        auto files = TargetFiles(rev->files, o);
        s = files.ok() ? Converge(c, rev->commit, *files, &hub, &sum, true) : files.status();
      }
    }
  }
  sum.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  auto it = c.journal->state().repos.find(o.repo);
  if (s.ok()) {
    if (it != c.journal->state().repos.end()) sum.files = it->second.materialized.size();
    return sum;
  }
  if (!s.IsCancelled() && !s.IsOffline()) (void)c.journal->Append({SyncFailedEvent(o.repo, s)});
  return s;
}

}  // namespace modelsync::engine
