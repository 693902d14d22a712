#include "engine/watch.h"

#include "engine/glob.h"
#include "engine/journal.h"
#include "engine/layout.h"
#include "engine/recovery_util.h"
#include "engine/repo_path.h"

namespace modelsync::engine {

Status Track(const Env& env, const std::string& root, modelsync::v1::RepoTracked t) {
  MS_RETURN_IF_ERROR(ValidateRepoId(t.repo()));
  if (t.ref().empty()) t.set_ref("main");
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, true));
  // The model id: --id, else the one the repo already owns (an id change sticks), else the
  // repo's name; never one another repo owns.
  if (t.model_id().empty()) {
    auto it = journal->state().repos.find(t.repo());
    t.set_model_id(it != journal->state().repos.end() && !it->second.model_id.empty()
                       ? it->second.model_id
                       : RepoName(t.repo()));
  }
  MS_RETURN_IF_ERROR(ValidateModelId(t.model_id()));
  for (const auto& owner : journal->state().OwnersOf(t.model_id()))
    if (owner != t.repo())
      return Status::InvalidArgument("model id '" + t.model_id() + "' belongs to " + owner +
                                     ": track " + t.repo() + " with --id NAME");
  modelsync::v1::Event e;
  *e.mutable_repo_tracked() = std::move(t);
  return journal->Append({std::move(e)}).status();
}

Status Untrack(const Env& env, const std::string& root, const std::string& repo) {
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, true));
  auto it = journal->state().repos.find(repo);
  if (it == journal->state().repos.end() || !it->second.tracked)
    return Status::NotFound(repo + " is not tracked in " + root + " (modelsync list shows what is)");
  modelsync::v1::Event e;
  e.mutable_repo_untracked()->set_repo(repo);
  return journal->Append({std::move(e)}).status();
}

Result<std::vector<modelsync::v1::RepoTracked>> ListTracked(const Env& env,
                                                            const std::string& root) {
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, true, false));
  std::vector<modelsync::v1::RepoTracked> out;
  for (const auto& [repo, rs] : journal->state().repos) {
    if (!rs.tracked) continue;
    auto t = rs.tracking;
    t.set_repo(repo);
    if (t.ref().empty()) t.set_ref("main");
    if (t.model_id().empty()) t.set_model_id(rs.model_id.empty() ? RepoName(repo) : rs.model_id);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace modelsync::engine
