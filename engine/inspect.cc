#include "engine/inspect.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "engine/catalog.h"
#include "engine/journal.h"
#include "engine/loadability.h"
#include "engine/root_path.h"

namespace modelsync::engine {

Result<InspectReport> Inspect(const Env& env, const std::string& root_in, const std::string& name) {
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, root_in, /*create=*/false));
  JournalOptions jo;
  jo.clock = env.clock;
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(root, /*read_only=*/true, jo));
  const State& st = journal->state();
  std::string repo = name;
  if (!st.repos.count(repo)) {
    for (const auto& [id, rs] : st.repos)
      if (rs.model_id == name) repo = id;
    if (!st.repos.count(repo))
      if (const auto* e = FindCatalogEntry(name)) repo = e->repo;
  }
  auto it = st.repos.find(repo);
  if (it == st.repos.end() || it->second.active_commit.empty())
    return Status::NotFound(name + " has no complete revision in " + root +
                            ": run `modelsync pull " + name + "` first");
  const RepoState& rs = it->second;
  InspectReport rep;
  rep.repo = repo;
  rep.model_id = rs.model_id;
  rep.ref = rs.active_ref;
  rep.commit = rs.active_commit;
  rep.marker = rs.marker;
  rep.model_dir = root + "/models/" + repo;
  auto rev = rs.revisions.find(rs.active_commit);
  if (rev != rs.revisions.end() && !rev->second.derived_from.converter().empty()) {
    const auto& d = rev->second.derived_from;
    rep.derived = {d.converter(),   d.source(),        d.source_sha256(),
                   d.source_size(), static_cast<size_t>(d.inputs_size()),
                   d.source_repo(), d.source_commit(), d.source_file()};
  }
  std::vector<std::string> paths;
  for (const auto& [path, id] : rs.materialized) {
    InspectFile f{path, 0, id};
    if (rev != rs.revisions.end())
      for (const auto& fe : rev->second.files)
        if (fe.path() == path) f.size = fe.size();
    rep.total_bytes += f.size;
    rep.files.push_back(f);
    paths.push_back(path);
  }
  int64_t activated = 0, marked = 0;
  MS_RETURN_IF_ERROR(journal->ForEachEvent(0, [&](uint64_t, const v1::Event& e) {
    if (e.has_revision_activated() && e.revision_activated().repo() == repo) activated = e.time_ms();
    if (e.has_marker_written() && e.marker_written().repo() == repo) marked = e.time_ms();
    return Status::Ok();
  }));
  rep.verified_ms = marked ? marked : activated;
  // The one loadability rule (loadability.h), and the marker as it is on disk: inspect never
  // says "marker written" beside a failed check.
  auto l = CheckLoadable(rep.model_dir, LoadabilityInputOf(rs));
  rep.is_model = l.ok() && l->kind != Loadability::Kind::kPlainFiles &&
                 l->kind != Loadability::Kind::kFilteredOut;
  if (!l.ok()) {
    rep.check_error = l.status().message();
  } else if (l->loadable()) {
    rep.model = std::move(l->report);
  } else if (rep.is_model) {
    rep.check_error = l->reason;
  }
  struct stat mst;
  bool on_disk = !rs.model_id.empty() &&
                 ::lstat((root + "/" + rs.model_id).c_str(), &mst) == 0 && S_ISREG(mst.st_mode) &&
                 mst.st_size == 0;
  rep.marker = rs.marker && on_disk && (!l.ok() || l->loadable());
  return rep;
}

}  // namespace modelsync::engine
