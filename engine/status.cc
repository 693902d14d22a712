#include "engine/status.h"

#include <map>
#include <set>

#include "engine/glob.h"
#include "engine/journal.h"
#include "engine/planner.h"
#include "engine/repo_path.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"
#include "storage/partial_file.h"

namespace modelsync::engine {
namespace {

RepoStatus Describe(const State& st, const RepoState& rs) {
  RepoStatus r;
  r.repo = rs.repo;
  r.model_id = rs.model_id;
  r.active_commit = rs.active_commit;
  r.active_ref = rs.active_ref;
  r.target_commit = rs.last_resolved_commit.empty() ? rs.active_commit : rs.last_resolved_commit;
  r.marker = rs.marker;
  r.last_error = rs.last_error;
  r.last_error_ms = rs.last_error_ms;
  r.last_checked_ms = rs.last_resolved_ms;
  r.tracked = rs.tracked;
  r.never_completed = rs.active_commit.empty();
  PathFilter filter(rs.active_include, rs.active_exclude);
  // Committed bytes of live transfers by content id (once, not per file: no quadratic step).
  std::map<std::string, uint64_t> partial_of;
  for (const auto& [tid, t] : st.transfers)
    partial_of[t.content_id] = std::max(partial_of[t.content_id], t.committed.CoveredBytes());
  // Counts over one revision's (filtered) files: files and bytes verified, bytes still needed.
  struct Counts {
    uint64_t files = 0, done = 0, bytes = 0, bytes_done = 0, missing_files = 0, missing_bytes = 0;
  };
  auto count = [&](const std::string& commit) {
    Counts c;
    auto rev = rs.revisions.find(commit);
    if (rev == rs.revisions.end()) return c;
    std::set<std::string> counted;
    for (const auto& f : rev->second.files) {
      if (!filter.Keep(f.path())) continue;
      ++c.files;
      c.bytes += f.size();
      std::string id = ContentIdOf(f);
      if (st.blobs.count(id)) {
        ++c.done;
        c.bytes_done += f.size();
        continue;
      }
      auto pit = partial_of.find(id);
      uint64_t partial = pit == partial_of.end() ? 0 : pit->second;
      c.bytes_done += partial;
      ++c.missing_files;
      if (counted.insert(id).second) c.missing_bytes += f.size() - partial;
    }
    return c;
  };
  r.update_available = !rs.active_commit.empty() && rs.active_commit != r.target_commit;
  Counts shown = count(rs.active_commit.empty() ? r.target_commit : rs.active_commit);
  r.files_total = shown.files;
  r.files_done = shown.done;
  r.bytes_total = shown.bytes;
  r.bytes_done = shown.bytes_done;
  if (r.update_available) {
    Counts up = count(r.target_commit);
    r.update_files = up.missing_files;
    r.update_bytes = up.missing_bytes;
  }
  bool complete = !rs.active_commit.empty() && shown.done == shown.files &&
                  (rs.marker || !rs.unloadable.empty());
  if (!rs.marker && !rs.unloadable.empty()) r.no_marker_reason = rs.unloadable;
  if (auto rev = rs.revisions.find(rs.active_commit);
      rev != rs.revisions.end() && !rev->second.derived_from.converter().empty()) {
    r.converted_from = rev->second.derived_from.source();
    r.converter = rev->second.derived_from.converter();
  }
  if (complete && !r.update_available) r.state = "complete";
  else if (!rs.last_error.empty()) r.state = "failed";
  else if (complete) r.state = "update-available";
  else r.state = "partial";
  for (const auto& owner : st.OwnersOf(rs.model_id))
    if (owner != rs.repo) r.shared_with.push_back(owner);
  return r;
}

}  // namespace

bool StatusReport::damaged() const {
  if (!stray_markers.empty()) return true;
  for (const auto& r : repos)
    if (r.marker_state == "missing" || r.marker_state == "unexpected" || !r.shared_with.empty())
      return true;
  return false;
}

Result<StatusReport> ReadStatus(const Env& env, const std::string& root,
                                const std::string& repo_filter) {
  JournalOptions jo;
  jo.clock = env.clock;
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(root, /*read_only=*/true, jo));
  const State& st = journal->state();
  StatusReport out;
  // The markers on disk, checked against the log (a look at the root's top level only).
  std::set<std::string> on_disk;
  if (auto dir = env.fs->OpenRoot(root, false); dir.ok()) {
    if (auto names = (*dir)->List(); names.ok()) {
      for (const auto& n : *names) {
        if (n.empty() || n[0] == '.' || n == "models" || !ValidateModelId(n).ok()) continue;
        auto info = (*dir)->Stat(n);
        if (info.ok() && info->type == storage::FileInfo::Type::kFile && info->size == 0)
          on_disk.insert(n);
      }
    }
    if (auto blobs = storage::BlobStore::Open(**dir, false); blobs.ok())
      if (auto ids = (*blobs)->List(); ids.ok())
        for (const auto& id : *ids)
          if (auto info = (*blobs)->Stat(id); info.ok()) out.blob_bytes += info->size;
    if (auto partials = storage::PartialStore::Open(**dir, false); partials.ok())
      if (auto list = (*partials)->List(); list.ok())
        for (const auto& [id, size] : *list) out.partial_bytes += size;
  }
  std::set<std::string> accounted;
  for (const auto& [name, rs] : st.repos) {
    if (rs.marker) accounted.insert(rs.model_id);
    if (!repo_filter.empty() && name != repo_filter) continue;
    RepoStatus r = Describe(st, rs);
    r.marker_on_disk = !rs.model_id.empty() && on_disk.count(rs.model_id) > 0;
    bool others = false;
    for (const auto& o : r.shared_with) others |= st.repos.at(o).marker;
    // A marker on disk the log has not recorded: after a crash between its fsync and its
    // MarkerWritten ("unrecorded", the next pull records it), unless the log says the
    // revision gets no marker or nothing is active ("unexpected": damage).
    r.marker_state = rs.marker            ? (r.marker_on_disk ? "written" : "missing")
                     : !r.marker_on_disk || others ? "absent"
                     : r.never_completed || !rs.unloadable.empty() ? "unexpected"
                                                                   : "unrecorded";
    out.repos.push_back(std::move(r));
  }
  if (repo_filter.empty())
    for (const auto& n : on_disk) {
      bool owned = !st.OwnersOf(n).empty();
      if (!accounted.count(n) && !owned) out.stray_markers.push_back(n);
    }
  if (!repo_filter.empty() && out.repos.empty())
    return Status::NotFound(repo_filter + " is not in " + root + " (pull it first)");
  return out;
}

}  // namespace modelsync::engine
