#include "engine/recovery_util.h"

#include <cctype>
#include <climits>
#include <cstdlib>

#include "engine/layout.h"
#include "engine/loadability.h"
#include "engine/pull.h"
#include "engine/repo_path.h"
#include "storage/root_lock.h"

namespace modelsync::engine {

Status ExplainLogError(const Status& s, const std::string& root) {
  if (!s.IsCorruption()) return s;
  return Status::Corruption(
      s.message() + ". The event log under " + root +
      "/.modelsync/log is damaged, so nothing was changed. What still works: "
      "`modelsync log` prints the events before the damaged one; the model files "
      "and blobs on disk are untouched. Keep a copy of .modelsync/log for a bug report; "
      "to start over, move .modelsync aside and pull again (blobs are re-verified)");
}

std::string LockWaitMessage(const std::string& root, int holder_pid) {
  return "root " + root + " is in use by " + storage::RootLock::Describe(holder_pid) +
         "; waiting for it to finish";
}

Result<std::unique_ptr<Journal>> OpenJournal(const Env& env, const std::string& root,
                                             bool read_only, bool wait_for_lock) {
  JournalOptions jo;
  jo.clock = env.clock;
  jo.wait_for_lock = wait_for_lock;
  if (env.on_lock_wait)
    jo.on_wait = [&](int pid) { env.on_lock_wait(LockWaitMessage(root, pid)); };
  auto j = Journal::Open(root, read_only, jo);
  if (!j.ok()) return ExplainLogError(j.status(), root);
  return j;
}

bool HasActiveFiles(const RepoState& rs) {
  return !rs.active_commit.empty() && !rs.materialized.empty();
}

std::string ModelIdOf(const RepoState& rs) {
  return rs.model_id.empty() ? RepoName(rs.repo) : rs.model_id;
}

bool SharedMarker(const State& st, const std::string& repo, const std::string& model_id) {
  for (const auto& owner : st.OwnersOf(model_id))
    if (owner != repo && st.repos.at(owner).marker) return true;
  return false;
}

std::map<std::string, uint64_t> ActiveSizes(const RepoState& rs) {
  std::map<std::string, uint64_t> out;
  auto rev = rs.revisions.find(rs.active_commit);
  if (rev == rs.revisions.end()) return out;
  for (const auto& f : rev->second.files) out[f.path()] = f.size();
  return out;
}

Result<RefetchResult> Refetch(const Env& env, const std::string& root, const RepoState& rs,
                              const std::string& endpoint, const std::atomic<bool>* cancel) {
  PullOptions po;
  po.cancel = cancel;
  po.root = root;
  po.repo = rs.repo;
  // The commit, not the ref: the content must be exactly the active revision's.
  po.revision = rs.active_commit;
  po.record_ref = rs.active_ref;  // ... recorded under the ref it was pulled by
  po.model_id = ModelIdOf(rs);
  po.include = rs.active_include;
  po.exclude = rs.active_exclude;
  po.endpoint = endpoint;
  MS_ASSIGN_OR_RETURN(PullSummary sum, Pull(env, po, nullptr));
  RefetchResult r;
  r.bytes_fetched = sum.bytes_fetched;
  return r;
}

std::string ConvertSourcePath(const std::string& root, const v1::Derivation& d) {
  if (!d.source_repo().empty()) {
    if (!ValidateRepoId(d.source_repo()).ok()) return "";
    if (!d.source_file().empty() && !ValidateRepoPath(d.source_file()).ok()) return "";
    return root + "/models/" + d.source_repo() +
           (d.source_file().empty() ? "" : "/" + d.source_file());
  }
  const std::string& source = d.source();
  if (!source.empty() && source[0] == '/') return source;
  auto hex40 = [&](size_t at) {
    if (source.size() < at + 41) return false;
    for (size_t k = at + 1; k < at + 41; ++k)
      if (!std::isxdigit(static_cast<unsigned char>(source[k]))) return false;
    return source.size() == at + 41 || source[at + 41] == '/';
  };
  for (size_t at = source.rfind('@'); at != std::string::npos && at > 0; at = source.rfind('@', at - 1)) {
    if (!hex40(at)) continue;
    const std::string before = source.substr(0, at);
    const size_t s2 = before.rfind('/');
    if (s2 == std::string::npos || s2 == 0) return "";
    const size_t s1 = before.rfind('/', s2 - 1);
    if (s1 == std::string::npos) return "";
    const std::string repo = before.substr(s1 + 1);
    if (!ValidateRepoId(repo).ok()) return "";
    return root + "/models/" + repo + source.substr(at + 41);
  }
  return "";
}

}  // namespace modelsync::engine
