// Gc and Remove (recovery.h).
#include <set>

#include "engine/event_builders.h"
#include "engine/layout.h"
#include "engine/materializer.h"
#include "engine/model_index.h"
#include "engine/observe.h"
#include "engine/planner.h"
#include "engine/recovery.h"
#include "engine/recovery_util.h"
#include "engine/repo_path.h"
#include "engine/state_compact.h"
#include "storage/partial_file.h"

namespace modelsync::engine {

Result<GcReport> Gc(const Env& env, const GcOptions& o) {
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, o.root, /*create=*/false));
  // Read-write: the writer lock guarantees no pull runs, so no partial is live but those
  // the state lists.
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, o.wait_for_lock));
  MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, false));
  const State& st = journal->state();
  std::set<std::string> referenced;
  for (const auto& [repo, rs] : st.repos)
    if (HasActiveFiles(rs))
      for (const auto& [path, cid] : rs.materialized) referenced.insert(cid);
  GcReport report;
  if (auto blobs = storage::BlobStore::Open(*root_dir, false); blobs.ok()) {
    MS_ASSIGN_OR_RETURN(auto ids, (*blobs)->List());
    std::vector<v1::Event> removed;  // committed before any file goes (BlobRemoved)
    for (const auto& id : ids) {
      if (referenced.count(id)) {
        ++report.blobs_kept;
        continue;
      }
      MS_ASSIGN_OR_RETURN(auto info, (*blobs)->Stat(id));
      report.blobs.push_back({id, info.size});
      report.bytes_freed += info.size;
      if (st.blobs.count(id)) removed.push_back(BlobRemovedEvent(id, "unreferenced"));
    }
    if (!o.dry_run) {
      if (!removed.empty()) MS_RETURN_IF_ERROR(journal->Append(std::move(removed)).status());
      for (const auto& [id, size] : report.blobs) MS_RETURN_IF_ERROR((*blobs)->Remove(id));
    }
    // Temporary files a crash left in blobs/ (no writer runs: the lock is held).
    MS_ASSIGN_OR_RETURN(auto leftovers, (*blobs)->ListLeftovers());
    for (const auto& [name, size] : leftovers) {
      report.temp_files.push_back({name, size});
      report.bytes_freed += size;
      if (!o.dry_run) MS_RETURN_IF_ERROR((*blobs)->RemoveLeftover(name));
    }
  } else if (!blobs.status().IsNotFound()) {
    return blobs.status();
  }
  if (auto partials = storage::PartialStore::Open(*root_dir, false); partials.ok()) {
    MS_ASSIGN_OR_RETURN(auto present, (*partials)->List());
    for (const auto& [id, size] : present) {
      if (st.transfers.count(id)) continue;
      report.partials.push_back({id, size});
      report.bytes_freed += size;
      if (!o.dry_run) MS_RETURN_IF_ERROR((*partials)->Remove(id));
    }
  } else if (!partials.status().IsNotFound()) {
    return partials.status();
  }
  if (!o.dry_run && o.snapshot && st.last_seq > 0) {
    MS_RETURN_IF_ERROR(journal->WriteSnapshot());
    report.snapshot_written = true;
    report.snapshot_seq = st.last_seq;
  }
  report.log_bytes_before = report.log_bytes_after = journal->LogFileBytes();
  if (o.compact && o.snapshot && st.last_seq > 0) {
    // Every event is <= the snapshot just written (the lock keeps writers out).
    CompactionPlan plan;
    MS_RETURN_IF_ERROR(journal->ForEachEvent(1, [&](uint64_t seq, const v1::Event& e) {
      plan.Observe(seq, e);
      return Status::Ok();
    }));
    report.events_compacted = plan.events();
    report.compacted_event_bytes = plan.record_bytes();
    report.live_range_events = plan.kept_live();
    if (!o.dry_run && plan.events() > 0) {
      MS_ASSIGN_OR_RETURN(LogCompaction c, journal->CompactLog(plan.Take(), true));
      report.log_bytes_before = c.bytes_before;
      report.log_bytes_after = c.bytes_after;
      report.log_rewritten = c.rewritten;
      report.rewrite_error = c.rewrite_error;
    }
  }
  return report;
}

Result<RemoveReport> Remove(const Env& env, const RemoveOptions& o) {
  MS_RETURN_IF_ERROR(ValidateRepoId(o.repo));
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, o.root, /*create=*/false));
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, o.wait_for_lock));
  auto it = journal->state().repos.find(o.repo);
  if (it == journal->state().repos.end())
    return Status::NotFound(o.repo + " is not in " + root + " (modelsync status lists the models)");
  const RepoState rs = it->second;  // a copy: Append changes the state
  MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, false));
  MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*root_dir));
  Materializer mat(*root_dir, *blobs);
  RemoveReport report;
  report.repo = o.repo;
  // 1. The marker first: it must never claim a model that is going away. Only the repo's own:
  //    a marker of the same name that another repo also claims (a log of an older modelsync)
  //    and has written stays.
  const std::string model_id = rs.model_id;
  bool shared = false;
  for (const auto& owner : journal->state().OwnersOf(model_id))
    if (owner != o.repo && journal->state().repos.at(owner).marker) shared = true;
  if (!model_id.empty() && ValidateModelId(model_id).ok() && !shared) {
    // Recorded before the file goes (as every removal): a failure or crash in between leaves
    // a marker the log calls removed beside the still complete model, never the reverse.
    bool had = mat.HasMarker(model_id);
    if (had || rs.marker)
      MS_RETURN_IF_ERROR(journal->Append({MarkerRemovedEvent(o.repo, model_id)}).status());
    MS_RETURN_IF_ERROR(mat.RemoveMarker(model_id));
    if (had) report.marker = root + "/" + model_id;
  }
  // 2. The directory: our files go; the user's own files stay (storage/LAYOUT.md). A crash
  //    leaves a staging leftover that CleanStaging removes.
  MS_RETURN_IF_ERROR(mat.CleanStaging(o.repo));
  MS_ASSIGN_OR_RETURN(Observation obs, Observe(*root_dir, o.repo, {}));
  PlanInput in;
  in.repo = o.repo;
  in.model_id = model_id.empty() ? RepoName(o.repo) : model_id;
  in.want_marker = false;
  MS_ASSIGN_OR_RETURN(Plan plan, MakePlan(in, journal->state(), obs));
  report.user_files = plan.user_files;
  if (obs.model_dir_exists) {
    if (plan.user_files.empty()) {
      MS_RETURN_IF_ERROR(mat.RemoveModel(o.repo));
    } else {
      MS_RETURN_IF_ERROR(mat.Materialize(o.repo, {}, nullptr, &plan.user_files));
    }
    report.model_dir = root + "/models/" + o.repo;
  }
  // 3. The facts: the repo is no longer kept (the fold forgets it; the history stays).
  report.files = rs.materialized.size();
  v1::Event e;
  e.mutable_repo_removed()->set_repo(o.repo);
  e.mutable_repo_removed()->set_model_id(model_id);
  MS_RETURN_IF_ERROR(journal->Append({std::move(e)}).status());
  MS_RETURN_IF_ERROR(WriteModelsIndex(*root_dir, journal->state()));
  return report;
}

}  // namespace modelsync::engine
