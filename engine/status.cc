#include "engine/status.h"

#include <set>

#include "engine/glob.h"
#include "engine/journal.h"
#include "engine/planner.h"

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
  r.tracked = rs.tracked;
  auto rev = rs.revisions.find(r.target_commit);
  PathFilter filter(rs.active_include, rs.active_exclude);
  std::set<std::string> counted;
  if (rev != rs.revisions.end()) {
    for (const auto& f : rev->second.files) {
      if (!filter.Keep(f.path())) continue;
      ++r.files_total;
      r.bytes_total += f.size();
      std::string id = ContentIdOf(f);
      if (st.blobs.count(id)) {
        ++r.files_done;
        r.bytes_done += f.size();
        continue;
      }
      uint64_t partial = 0;
      for (const auto& [tid, t] : st.transfers)
        if (t.content_id == id) partial = std::max(partial, t.committed.CoveredBytes());
      r.bytes_done += partial;
      if (counted.insert(id).second) r.update_bytes += f.size() - partial;
    }
  }
  bool at_target = !rs.active_commit.empty() && rs.active_commit == r.target_commit;
  r.update_available = !rs.active_commit.empty() && rs.active_commit != r.target_commit;
  if (!r.update_available) r.update_bytes = 0;
  if (rs.marker && at_target && r.files_done == r.files_total) r.state = "complete";
  else if (!rs.last_error.empty()) r.state = "failed";
  else if (rs.marker && r.update_available) r.state = "update-available";
  else r.state = "partial";
  return r;
}

}  // namespace

Result<std::vector<RepoStatus>> ReadStatus(const std::string& root, const std::string& repo_filter) {
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(root, /*read_only=*/true));
  const State& st = journal->state();
  std::vector<RepoStatus> out;
  for (const auto& [name, rs] : st.repos) {
    if (!repo_filter.empty() && name != repo_filter) continue;
    out.push_back(Describe(st, rs));
  }
  if (!repo_filter.empty() && out.empty())
    return Status::NotFound(repo_filter + " is not in " + root + " (pull it first)");
  return out;
}

}  // namespace modelsync::engine
