#include "engine/watch.h"

#include "engine/glob.h"
#include "engine/journal.h"
#include "engine/layout.h"
#include "engine/recovery_util.h"
#include "engine/repo_path.h"

namespace modelsync::engine {
namespace {

modelsync::v1::RepoTracked ToEvent(const Tracking& t) {
  modelsync::v1::RepoTracked e;
  e.set_repo(t.repo);
  e.set_ref(t.ref);
  e.set_model_id(t.model_id);
  for (const auto& g : t.include) e.add_include(g);
  for (const auto& g : t.exclude) e.add_exclude(g);
  e.set_every_ms(t.every_ms);
  e.set_endpoint(t.endpoint);
  e.set_convert(t.convert);
  e.set_convert_file(t.convert_file);
  e.set_quantize_bits(t.quantize_bits);
  e.set_converted_id(t.converted_id);
  return e;
}

Tracking FromEvent(const modelsync::v1::RepoTracked& e) {
  Tracking t;
  t.repo = e.repo();
  t.ref = e.ref();
  t.model_id = e.model_id();
  t.include.assign(e.include().begin(), e.include().end());
  t.exclude.assign(e.exclude().begin(), e.exclude().end());
  t.every_ms = e.every_ms();
  t.endpoint = e.endpoint();
  t.convert = e.convert();
  t.convert_file = e.convert_file();
  t.quantize_bits = e.quantize_bits();
  t.converted_id = e.converted_id();
  return t;
}

}  // namespace

Status Track(const Env& env, const std::string& root, Tracking tracking) {
  modelsync::v1::RepoTracked t = ToEvent(tracking);
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

Result<std::vector<Tracking>> ListTracked(const Env& env, const std::string& root) {
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, true, false));
  std::vector<Tracking> out;
  for (const auto& [repo, rs] : journal->state().repos) {
    if (!rs.tracked) continue;
    Tracking t = FromEvent(rs.tracking);
    t.repo = repo;
    if (t.ref.empty()) t.ref = "main";
    if (t.model_id.empty()) t.model_id = rs.model_id.empty() ? RepoName(repo) : rs.model_id;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace modelsync::engine
