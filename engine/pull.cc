#include "engine/pull.h"
#include "engine/recovery_util.h"
#include "engine/repo_ref.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "base/hash.h"
#include "base/units.h"
#include "engine/adopt_existing.h"
#include "engine/blob_check.h"
#include "engine/disk_space.h"
#include "engine/event_builders.h"
#include "engine/glob.h"
#include "engine/hub_config.h"
#include "engine/journal.h"
#include "engine/layout.h"
#include "engine/loadability.h"
#include "engine/manifest_events.h"
#include "engine/materializer.h"
#include "engine/model_check.h"
#include "engine/model_index.h"
#include "engine/observe.h"
#include "engine/planner.h"
#include "engine/pull_ctx.h"
#include "engine/cancel_watch.h"
#include "engine/pull_internal.h"
#include "engine/repo_path.h"
#include "engine/root_path.h"
#include "engine/transfer_runner.h"
#include "net/hub.h"
#include "net/hub_options.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"
#include "storage/partial_file.h"

namespace modelsync::engine {
namespace {

constexpr int kDefaultConnections = 16;  // a cap: the runner starts at 8, 16 on a far link (transfer_parallel.h)
constexpr int kMaxRounds = 4;
// Runs the plan's steps in planner.h order. Returns early (OK) when the plan went stale
// mid-way (a bad blob was removed): the caller plans again after every Execute anyway.
Status Execute(Ctx& c, const Plan& plan, net::Hub* hub, PullSummary* sum) {
  Materializer mat(*c.root_dir, *c.blobs);
  std::vector<v1::Event> events;
  auto flush = [&]() -> Status {
    if (events.empty()) return Status::Ok();
    auto r = c.journal->Append(std::move(events));
    events.clear();
    return r.status();
  };
  if (plan.clean_staging) MS_RETURN_IF_ERROR(mat.CleanStaging(plan.repo));
  // Each removal is recorded before the file goes (a crash in between leaves a marker the log
  // calls removed, never a recorded marker that is missing).
  for (const auto& m : plan.remove_markers) events.push_back(MarkerRemovedEvent(plan.repo, m));
  MS_RETURN_IF_ERROR(flush());
  for (const auto& m : plan.remove_markers) MS_RETURN_IF_ERROR(mat.RemoveMarker(m));
  for (const auto& b : plan.remove_blobs) {
    if (c.journal->state().blobs.count(b))
      MS_RETURN_IF_ERROR(
          c.journal->Append({BlobRemovedEvent(b, "size contradicts the manifest")}).status());
    MS_RETURN_IF_ERROR(c.blobs->Remove(b));
  }
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

  // Blobs on disk the log never recorded: re-hashed (no network), or removed and planned again.
  {
    MS_ASSIGN_OR_RETURN(BlobCheck bc, CheckUnrecordedBlobs(plan, *c.blobs));
    if (bc.removed) return Status::Ok();  // Converge plans again: the content is fetched
    for (auto& e : bc.verified) events.push_back(std::move(e));
    MS_RETURN_IF_ERROR(flush());
  }

  bool any_fetch = false;
  for (const auto& f : plan.files)
    any_fetch |= f.action == FileAction::kFetch || f.action == FileAction::kResume;
  if (any_fetch) {
    if (!hub)
      return Status::Offline("HF_HUB_OFFLINE is set and " + plan.repo + " needs " +
                             std::to_string(plan.fetch_bytes) +
                             " bytes from the hub: unset HF_HUB_OFFLINE to download them");
    MS_RETURN_IF_ERROR(CheckFreeSpace(*c.root_dir, plan.allocate_bytes));
    TransferRunnerOptions ro;
    ro.connections = c.o.connections > 0 ? c.o.connections : kDefaultConnections;
    ro.start_connections = StartConnections(hub->counters().api_round_trip_us);
    ro.write_ahead = FarLink(hub->counters().api_round_trip_us);
    ro.cancel = c.o.cancel;
    ro.clock = c.env.clock;
    uint64_t rate_set = c.o.max_rate ? c.o.max_rate->load() : 0;
    ro.on_progress = [&, rate_set](const TransferProgress& p) mutable {
      if (c.o.max_rate && c.o.max_rate->load() != rate_set) {
        rate_set = c.o.max_rate->load();
        hub->SetMaxRate(rate_set);
      }
      if (c.observer)
        c.observer->OnProgress(p.bytes_done, p.bytes_total, p.files_done, p.files_total);
    };
    // The new tree is built while the small files arrive: each is written straight into the
    // staging directory and made a blob from there by the small files' writer
    // (small_files_tree, Materializer::Stage/Publish), or where it cannot be, linked into it
    // by the thread that made it a blob (Materializer::Add, on_small_blob; best effort:
    // Materialize below links whatever is not there yet and reports any error). Only
    // that thread touches `mat` until Run() returns. Begin's errors end the pull here, as
    // Materialize's would after the download: its fsyncs (a new models/ or models/<org>/)
    // must not fail once and be skipped the next time because the directory exists.
    bool early = false;
    for (const auto& f : plan.files) early |= f.action == FileAction::kFetch && f.in_memory;
    early = early && plan.build_dir;
    if (early) {
      MS_RETURN_IF_ERROR(mat.Begin(plan.repo));
      ro.on_small_blob = [&mat](const std::string& path, const std::string& content_id) {
        (void)mat.Add(path, content_id);
      };
      ro.small_files_tree = &mat;
    }
    if (c.observer) {
      ro.on_file_done = [&](const std::string& path, uint64_t size, bool fetched_now) {
        c.observer->OnFileDone(path, size, fetched_now);
      };
    }
    TransferRunner runner(*c.journal, *hub, *c.partials, *c.blobs, ro);
    const uint64_t placed_before = hub->counters().placed_bytes;
    Status s = runner.Run(plan);
    sum->bytes_in_place += hub->counters().placed_bytes - placed_before;
    if (!s.ok() && early) (void)mat.CleanStaging(plan.repo);  // not left for the next run
    sum->bytes_fetched += runner.bytes_fetched();
    if (sum->start_connections == 0) sum->start_connections = runner.start_connections();
    sum->connections = std::max(sum->connections, runner.connections());
    sum->wrote_ahead = sum->wrote_ahead || runner.wrote_ahead();
    MS_RETURN_IF_ERROR(s);
  }

  if (plan.build_dir) {
    std::vector<MaterialFile> mf;
    for (const auto& f : plan.files) mf.push_back({f.path, f.content_id});
    // A swap that cannot be atomic leaves no directory for a moment: the marker goes first
    // (the next round of Converge writes it again once the new revision is active).
    mat.SetBeforeUnsafeSwap([&]() -> Status {
      auto it = c.journal->state().repos.find(plan.repo);
      if (it == c.journal->state().repos.end() || it->second.model_id.empty()) return Status::Ok();
      // Recorded before the file goes: a crash in between leaves a marker the log calls
      // removed beside a complete (old) directory, never a recorded one that is missing.
      const std::string id = it->second.model_id;
      if (it->second.marker)
        MS_RETURN_IF_ERROR(c.journal->Append({MarkerRemovedEvent(plan.repo, id)}).status());
      return mat.RemoveMarker(id);
    });
    MS_RETURN_IF_ERROR(mat.Materialize(plan.repo, mf, nullptr, &plan.user_files));
  }
  // The loadability rule runs on the files now in place, before the activation records it.
  if (plan.activate || plan.write_marker) MS_RETURN_IF_ERROR(CheckOnDisk(c));
  const std::string unloadable = c.checked ? c.on_disk.reason : c.listing.reason;
  bool reactivate = false;
  if (auto it = c.journal->state().repos.find(plan.repo); it != c.journal->state().repos.end())
    reactivate = it->second.active_commit == plan.commit && it->second.unloadable != unloadable;
  if (plan.activate || reactivate) {
    for (const auto& r : plan.removals) events.push_back(FileRemovedEvent(plan.repo, plan.commit, r));
    for (const auto& f : plan.files)
      events.push_back(FileMaterializedEvent(plan.repo, plan.commit, f.path, f.content_id));
    v1::Event e;
    auto* ra = e.mutable_revision_activated();
    ra->set_repo(plan.repo);
    ra->set_commit(plan.commit);
    ra->set_model_id(plan.model_id);
    ra->set_ref(c.o.record_ref.empty() ? c.o.revision : c.o.record_ref);
    for (const auto& g : c.o.include) ra->add_include(g);
    for (const auto& g : c.o.exclude) ra->add_exclude(g);
    ra->set_unloadable(unloadable);
    events.push_back(std::move(e));
    MS_RETURN_IF_ERROR(flush());
  }
  if (plan.write_marker && c.want_marker) {
    MS_RETURN_IF_ERROR(mat.WriteMarker(plan.model_id));
    events.push_back(MarkerWrittenEvent(plan.repo, plan.model_id));
    MS_RETURN_IF_ERROR(flush());
  }
  return Status::Ok();
}

// After the disk equals the target: the marker of a former model id goes (after the new one
// was written), and the verdict decides the result.
Status Finish(Ctx& c, PullSummary* sum) {
  if (!c.old_model_id.empty() && c.old_model_id != c.model_id) {
    Materializer mat(*c.root_dir, *c.blobs);
    bool had = mat.HasMarker(c.old_model_id);
    if (had) {  // recorded before the file goes
      MS_RETURN_IF_ERROR(
          c.journal->Append({MarkerRemovedEvent(c.o.repo, c.old_model_id)}).status());
      sum->previous_marker = c.root + "/" + c.old_model_id;
    }
    MS_RETURN_IF_ERROR(mat.RemoveMarker(c.old_model_id));
  }
  FillModelSummary(c);
  const auto& st = c.journal->state();
  auto it = st.repos.find(c.o.repo);
  sum->marker_written = it != st.repos.end() && it->second.marker &&
                        it->second.model_id == c.model_id;
  const Loadability& v = Verdict(c);
  if (v.kind == Loadability::Kind::kNotLoadable && !c.o.any_format)
    return Status::Permanent(c.o.repo + ": " + v.reason);
  return Status::Ok();
}

// Plans and executes until the disk equals the target (or kMaxRounds).
Status Converge(Ctx& c, const std::string& commit, const std::vector<v1::FileEntry>& all,
                const std::vector<v1::FileEntry>& files, net::Hub* hub, PullSummary* sum,
                bool report) {
  MS_RETURN_IF_ERROR(PreCheck(c, commit, all, files));
  PlanInput in;
  in.repo = c.o.repo;
  in.commit = commit;
  in.model_id = c.model_id;
  in.files = files;
  PlanOptions po;
  po.chunk_size = c.env.config.chunk_bytes ? c.env.config.chunk_bytes : kDefaultChunkBytes;
  po.small_file_bytes = c.env.config.small_file_bytes;
  Status done = Status::Ok();
  for (int round = 0; round < kMaxRounds; ++round) {
    MS_ASSIGN_OR_RETURN(Observation obs, Observe(*c.root_dir, c.o.repo, {c.model_id}));
    if (round == 0) {
      // Files already in the directory: matching bytes are adopted, the user's are kept.
      MS_ASSIGN_OR_RETURN(AdoptResult ad,
                          AdoptExisting(*c.root_dir, *c.blobs, *c.journal, c.o.repo, files, obs));
      for (auto& k : ad.kept) sum->kept.push_back(std::move(k));
      if (ad.files > 0 || !sum->kept.empty()) {
        MS_ASSIGN_OR_RETURN(obs, Observe(*c.root_dir, c.o.repo, {c.model_id}));
      }
    }
    in.want_marker = c.want_marker;
    MS_ASSIGN_OR_RETURN(Plan plan, MakePlan(in, c.journal->state(), obs, po));
    if (round == 0) {
      sum->bytes_total = plan.total_bytes;
      sum->bytes_reused = plan.present_bytes;
      sum->up_to_date = plan.NothingToDo();
      if (report && c.observer)
        c.observer->OnResolved(c.o.repo, c.o.revision, commit, files.size(), plan.total_bytes,
                               plan.fetch_bytes);
    }
    if (plan.NothingToDo()) return Finish(c, sum);
    MS_RETURN_IF_ERROR(Execute(c, plan, hub, sum));
  }
  return Status::Transient("the model did not settle after " + std::to_string(kMaxRounds) +
                           " rounds; run pull again");
}

// Offline answers only from the log: the commit a revision names here, or kOffline.
Result<std::string> OfflineCommit(const State& st, const std::string& repo,
                                  const std::string& asked, const std::string& root) {
  MS_ASSIGN_OR_RETURN(std::string full, ExpandShortCommit(st, repo, asked));
  const std::string& revision = full.empty() ? asked : full;
  auto it = st.repos.find(repo);
  std::string hint = "unset HF_HUB_OFFLINE to download it";
  if (it == st.repos.end() || it->second.active_commit.empty())
    return Status::Offline("HF_HUB_OFFLINE is set and " + repo + " has never been pulled into " +
                           root + ": " + hint);
  const RepoState& rs = it->second;
  std::string commit = rs.active_commit;
  if (IsHex(revision, 40) && revision != commit)
    return Status::Offline("HF_HUB_OFFLINE is set and " + repo + " is at " +
                           commit.substr(0, 12) + ", not " + revision + ": " + hint);
  if (!IsHex(revision, 40)) {
    // The ref must be one this root has resolved, and what it last resolved to must be the
    // active revision.
    std::string resolved;
    if (rs.last_resolved_ref == revision) resolved = rs.last_resolved_commit;
    for (const auto& [cm, rev] : rs.revisions)
      if (resolved.empty() && rev.ref == revision) resolved = cm;
    if (resolved.empty() && rs.active_ref == revision) resolved = commit;
    if (resolved.empty())
      return Status::Offline("HF_HUB_OFFLINE is set and " + root + " has never resolved " + repo +
                             "@" + revision + ", so it cannot say what that revision is: " + hint);
    if (resolved != commit)
      return Status::Offline("HF_HUB_OFFLINE is set and " + repo + "@" + revision +
                             " last resolved to " + resolved.substr(0, 12) +
                             ", which is not the complete revision here (" +
                             commit.substr(0, 12) + "): " + hint);
  }
  if (!rs.revisions.count(commit))
    return Status::Offline("HF_HUB_OFFLINE is set and the manifest of " + repo + "@" + commit +
                           " is not in the log: " + hint);
  return commit;
}

Status PullOffline(Ctx& c, PullSummary* sum) {
  const auto& st = c.journal->state();
  MS_ASSIGN_OR_RETURN(std::string commit, OfflineCommit(st, c.o.repo, c.o.revision, c.root));
  const auto& rev = st.repos.at(c.o.repo).revisions.at(commit);
  MS_ASSIGN_OR_RETURN(auto files, TargetFiles(rev.files, c.o));
  sum->commit = commit;
  sum->offline = true;
  return Converge(c, commit, rev.files, files, nullptr, sum, true);
}

// HF_HUB_OFFLINE on a root this user cannot write (another user's, a read-only mount): the
// answer comes from the log and the disk alone, and nothing is written. Complete (the plan
// has nothing to do and the marker is there): OK. Otherwise kOffline saying why.
Result<PullSummary> PullReadOnly(const Env& env, const PullOptions& o, const std::string& root,
                                 const std::string& why) {
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(root, /*read_only=*/true));
  const State& st = journal->state();
  MS_ASSIGN_OR_RETURN(std::string commit, OfflineCommit(st, o.repo, o.revision, root));
  const RepoState& rs = st.repos.at(o.repo);
  MS_ASSIGN_OR_RETURN(auto files, TargetFiles(rs.revisions.at(commit).files, o));
  MS_ASSIGN_OR_RETURN(auto dir, env.fs->OpenRoot(root, false));
  PlanInput in;
  in.repo = o.repo;
  in.commit = commit;
  in.model_id = rs.model_id.empty() ? RepoName(o.repo) : rs.model_id;
  in.files = files;
  in.want_marker = rs.unloadable.empty();
  MS_ASSIGN_OR_RETURN(Observation obs, Observe(*dir, o.repo, {in.model_id}));
  MS_ASSIGN_OR_RETURN(Plan plan, MakePlan(in, st, obs));
  if (!plan.NothingToDo())
    return Status::Offline(root + " cannot be written (" + why + ") and " + o.repo +
                           " is not complete there: it can only be checked, not repaired (run "
                           "modelsync as the root's owner)");
  PullSummary sum;
  sum.repo = o.repo;
  sum.ref = o.revision;
  sum.commit = commit;
  sum.model_dir = root + "/models/" + o.repo;
  sum.marker_path = root + "/" + in.model_id;
  sum.files = rs.materialized.size();
  sum.bytes_total = plan.total_bytes;
  sum.bytes_reused = plan.present_bytes;
  sum.up_to_date = true;
  sum.offline = true;
  sum.marker_written = rs.marker;
  sum.marker_note = rs.unloadable;
  sum.note = "read-only root (" + why + "): checked from the log and the disk, nothing written";
  return sum;
}

// A disk error says what to do (the CLI prints the message as it is). Statuses that already
// carry advice (Status::has_advice: FromErrno's ENOSPC note, the log's "retry") are kept.
Status WithDiskAdvice(const Status& s, const std::string& root) {
  const std::string& m = s.message();
  if (s.has_advice()) return s;
  const std::string kept = ", then run pull again: verified files and synced bytes are kept)";
  // A name taken by something of another kind (a file where a directory goes, or names that
  // differ only in case on a case-insensitive file system): a retry never helps.
  if (s.IsIOError() && (s.detail() == EEXIST || s.detail() == ENOTDIR || s.detail() == EISDIR))
    return Status::IOError(
        m + " (a file and a directory of the same name, or two names that differ only in case "
            "on this file system, collide under " + root +
            ": running pull again will not help; remove what stands in the way, or report the "
            "repo's listing)",
        s.detail());
  if (s.IsIOError() && s.detail() == EIO)
    return Status::IOError(
        m + " (the disk under " + root + " reported an I/O error: check it (dmesg)" + kept,
        s.detail());
  if (s.IsIOError())
    return Status::IOError(m + " (check the files and permissions under " + root + kept,
                           s.detail());
  if (s.IsNoSpace())
    return Status::NoSpace(m + " (free some space under " + root + kept, s.detail());
  return s;
}

}  // namespace

Result<PullSummary> Pull(const Env& env, const PullOptions& options, PullObserver* observer) {
  return PullWith(env, options, observer, {});
}

Result<PullSummary> PullWith(const Env& env, const PullOptions& options, PullObserver* observer,
                             const PullInternalOptions& internal) {
  auto t0 = env.clock->Now();
  PullOptions o = options;  // the revision may be a short commit, expanded below
  MS_RETURN_IF_ERROR(ValidateRepoId(o.repo));
  net::HubOptions hopts = HubOptionsOf(env, o.endpoint);
  if (observer)
    hopts.on_retry = [observer](const net::RetryNotice& n) { observer->OnRetry(n.message, n.delay); };
  if (observer && !hopts.offline && !hopts.token.empty() && hopts.endpoint.rfind("http://", 0) == 0)
    observer->OnWarning("the hub token will be sent in cleartext to " + hopts.endpoint +
                        " (the endpoint is plain HTTP): anyone on the path can read it; use an "
                        "https endpoint, or unset HF_TOKEN for public repos");
  if (o.cancel && o.cancel->load()) return Status::Cancelled("pull of " + o.repo + " cancelled");
  int conns = o.connections > 0 ? o.connections : kDefaultConnections;
  hopts.max_connections = std::max(conns, 4);
  Ctx c(env, o, observer);
  if (!o.model_id.empty()) MS_RETURN_IF_ERROR(ValidateModelId(o.model_id));

  MS_ASSIGN_OR_RETURN(c.root, ResolveRoot(env, o.root, /*create=*/true));
  JournalOptions jo;
  jo.wait_for_lock = o.wait_for_lock;
  jo.cancel = o.cancel;
  jo.on_commit = internal.on_commit;
  jo.clock = env.clock;
  jo.on_wait = [&](int pid) {
    if (observer)
      observer->OnWaitingForLock(LockWaitMessage(c.root, pid) + " (--no-wait fails instead)");
  };
  // Opening the root: disk errors here get the same advice as later ones.
  auto opened = [&]() -> Status {
    MS_ASSIGN_OR_RETURN(c.journal, Journal::Open(c.root, false, jo));
    MS_ASSIGN_OR_RETURN(c.root_dir, env.fs->OpenRoot(c.root, true));
    MS_ASSIGN_OR_RETURN(c.blobs, storage::BlobStore::Open(*c.root_dir));
    MS_ASSIGN_OR_RETURN(c.partials, storage::PartialStore::Open(*c.root_dir));
    return Status::Ok();
  }();
  if (!opened.ok()) {
    const long e = opened.detail();
    if (hopts.offline && (e == EACCES || e == EROFS || e == EPERM)) {
      c.journal.reset();  // LMDB allows one handle per process
      return PullReadOnly(env, o, c.root, std::strerror(static_cast<int>(e)));
    }
    return WithDiskAdvice(opened, c.root);
  }

  // A short commit this root has resolved is that commit (offline too); one it has not is
  // for the hub to resolve.
  if (auto full = ExpandShortCommit(c.journal->state(), o.repo, o.revision); !full.ok())
    return full.status();
  else if (!full->empty())
    o.revision = *full;
  if (o.only_if_tracked) {
    auto it = c.journal->state().repos.find(o.repo);
    if (it == c.journal->state().repos.end() || !it->second.tracked)
      return Status::NotFound(o.repo + " is no longer tracked in " + c.root +
                              " (removed or untracked): not pulled");
  }
  // The model id: --id, else the one the repo already owns, else the repo's name. One owner
  // per id, and never over a file that is not a marker: refused before any request.
  const RepoState* before = nullptr;
  if (auto it = c.journal->state().repos.find(o.repo); it != c.journal->state().repos.end())
    before = &it->second;
  c.model_id = !o.model_id.empty()                    ? o.model_id
               : before && !before->model_id.empty() ? before->model_id
                                                     : RepoName(o.repo);
  MS_RETURN_IF_ERROR(ValidateModelId(c.model_id));
  // Repos whose directories, or ids whose markers, differ only in case would share one file
  // on a case-insensitive file system: refused like a taken id.
  for (const auto& [name, rs] : c.journal->state().repos) {
    if (name != o.repo && FoldCase(name) == FoldCase(o.repo))
      return Status::InvalidArgument(
          o.repo + " and " + name + " (already in " + c.root +
          ") differ only in case: on a case-insensitive file system (the macOS default) they "
          "would share models/" + name + ", so one root keeps only one of them");
    if (name != o.repo && rs.model_id != c.model_id && FoldCase(rs.model_id) == FoldCase(c.model_id))
      return Status::InvalidArgument(
          "model id '" + c.model_id + "' differs only in case from '" + rs.model_id +
          "', which belongs to " + name + ": choose another with --id");
  }
  for (const auto& owner : c.journal->state().OwnersOf(c.model_id))
    if (owner != o.repo)
      return Status::InvalidArgument(
          "model id '" + c.model_id + "' belongs to " + owner + " (its marker is " + c.root +
          "/" + c.model_id + "): pull " + o.repo + " with --id NAME to give it another marker" +
          " name");
  {
    Materializer probe(*c.root_dir, *c.blobs);
    MS_RETURN_IF_ERROR(probe.CheckMarkerSlot(c.model_id));
  }
  bool claim = !before || before->model_id != c.model_id;
  if (before && !before->model_id.empty() && before->model_id != c.model_id)
    c.old_model_id = before->model_id;
  auto claim_event = [&] { return ModelIdAssignedEvent(o.repo, c.model_id, c.old_model_id); };
  if (claim && hopts.offline && before) {
    // Offline: nothing to resolve first; an id change of a pulled model is local.
    MS_RETURN_IF_ERROR(c.journal->Append({claim_event()}).status());
    claim = false;
  }

  // An index a crash left behind the log is brought up to date first.
  if (Status ix = WriteModelsIndex(*c.root_dir, c.journal->state()); !ix.ok())
    return WithDiskAdvice(ix, c.root);

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
      // Every path is validated before anything from the network becomes a durable fact.
      auto files = TargetFiles(rev->files, o);
      std::vector<v1::Event> facts;
      if (!files.ok()) {
        s = files.status();
      } else if (!known) {
        facts = ResolvedEvents(o.repo, o.revision, rev->commit, hopts.endpoint, rev->files);
      }
      if (s.ok() && claim) facts.push_back(claim_event());
      if (s.ok() && !facts.empty()) s = c.journal->Append(std::move(facts)).status();
      if (s.ok()) s = Converge(c, rev->commit, rev->files, *files, &hub, &sum, true);
    }
  }
  sum.seconds = std::chrono::duration<double>(env.clock->Now() - t0).count();
  if (Status ix = WriteModelsIndex(*c.root_dir, c.journal->state()); !ix.ok() && s.ok()) s = ix;
  auto it = c.journal->state().repos.find(o.repo);
  if (s.ok()) {
    if (it != c.journal->state().repos.end()) {
      sum.files = it->second.materialized.size();
      if (!it->second.last_error.empty()) {
        // A success clears the error an earlier run left (status shows the truth).
        v1::Event e;
        e.mutable_sync_completed()->set_repo(o.repo);
        e.mutable_sync_completed()->set_commit(sum.commit);
        (void)c.journal->Append({std::move(e)});
      }
    }
    return sum;
  }
  s = WithDiskAdvice(s, c.root);
  if (!s.IsCancelled() && !s.IsOffline()) (void)c.journal->Append({SyncFailedEvent(o.repo, s)});
  return s;
}

}  // namespace modelsync::engine
