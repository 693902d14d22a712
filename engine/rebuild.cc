// Rebuild (recovery.h): make models/ and the markers agree with the log again.
#include <set>

#include "engine/event_builders.h"
#include "engine/gguf_convert.h"
#include "engine/layout.h"
#include "engine/loadability.h"
#include "engine/materializer.h"
#include "engine/model_index.h"
#include "engine/observe.h"
#include "engine/recovery.h"
#include "engine/recovery_util.h"
#include "engine/repo_path.h"

namespace modelsync::engine {
namespace {

v1::Event MarkerEvent(const std::string& repo, const std::string& model_id, bool written) {
  return written ? MarkerWrittenEvent(repo, model_id) : MarkerRemovedEvent(repo, model_id);
}

// Is the model directory exactly the active files, each a link to its blob (besides the
// user's own files)?
bool DirMatches(const Observation& obs, const std::map<std::string, std::string>& files,
                const std::map<std::string, uint64_t>& sizes, size_t user_files) {
  if (!obs.model_dir_exists || obs.staging_exists) return false;
  if (obs.model_files.size() != files.size() + user_files) return false;
  for (const auto& [path, cid] : files) {
    auto it = obs.model_files.find(path);
    auto sz = sizes.find(path);
    if (it == obs.model_files.end() ||
        !IsMaterialized(it->second, cid, sz == sizes.end() ? it->second.size : sz->second, files,
                        path))
      return false;
  }
  return true;
}

Status RebuildRepoLocal(Journal& journal, storage::Dir& root, storage::BlobStore& blobs,
                        const RepoState& rs, RebuildRepo* out) {
  Materializer mat(root, blobs);
  out->repo = rs.repo;
  out->commit = rs.active_commit;
  out->model_id = ModelIdOf(rs);
  out->files = rs.materialized.size();
  MS_RETURN_IF_ERROR(ValidateModelId(out->model_id));
  MS_RETURN_IF_ERROR(mat.CleanStaging(rs.repo));
  MS_ASSIGN_OR_RETURN(Observation obs, Observe(root, rs.repo, {out->model_id}));
  auto sizes = ActiveSizes(rs);
  for (const auto& [path, cid] : rs.materialized) {
    auto b = obs.blobs.find(cid);
    auto sz = sizes.find(path);
    if (b == obs.blobs.end() || (sz != sizes.end() && sz->second != b->second))
      out->missing.push_back(path);
  }
  bool has_marker = obs.markers.count(out->model_id) > 0;
  if (!out->missing.empty()) {
    // A marker must never claim an incomplete model.
    // Recorded before the file goes, as every removal.
    if (has_marker || rs.marker)
      MS_RETURN_IF_ERROR(journal.Append({MarkerEvent(rs.repo, out->model_id, false)}).status());
    if (has_marker) {
      MS_RETURN_IF_ERROR(mat.RemoveMarker(out->model_id));
      out->marker_removed = true;
    }
    return Status::Ok();
  }
  std::set<std::string_view> active;
  for (const auto& [path, cid] : rs.materialized) active.insert(active.end(), path);
  std::vector<std::string> user = UserFiles(obs, active, rs.materialized);
  if (!DirMatches(obs, rs.materialized, sizes, user.size())) {
    std::vector<MaterialFile> mf;
    for (const auto& [path, cid] : rs.materialized) mf.push_back({path, cid});
    // A swap that cannot be atomic (docs/PLATFORM.md) removes the marker first; it is
    // written again below once the directory is whole.
    mat.SetBeforeUnsafeSwap([&]() -> Status {
      if (rs.marker)  // recorded first, as pull does
        MS_RETURN_IF_ERROR(
            journal.Append({MarkerEvent(rs.repo, out->model_id, false)}).status());
      if (has_marker) MS_RETURN_IF_ERROR(mat.RemoveMarker(out->model_id));
      has_marker = false;
      return Status::Ok();
    });
    MS_RETURN_IF_ERROR(mat.Materialize(rs.repo, mf, nullptr, &user));
    out->dir_rebuilt = true;
  }
  // The marker: the same loadability rule as pull, on the files now in place.
  MS_ASSIGN_OR_RETURN(Loadability l, CheckLoadable(root.path() + "/models/" + rs.repo,
                                                   LoadabilityInputOf(rs)));
  out->loadable = l.loadable();
  out->no_marker_reason = l.reason;
  if (!l.loadable()) {
    const bool shared = SharedMarker(journal.state(), rs.repo, out->model_id);
    if (rs.marker) MS_RETURN_IF_ERROR(journal.Append({MarkerEvent(rs.repo, out->model_id, false)}).status());
    if (has_marker && !shared) {
      MS_RETURN_IF_ERROR(mat.RemoveMarker(out->model_id));
      out->marker_removed = true;
    }
    return Status::Ok();
  }
  if (!has_marker) {
    Status w = mat.WriteMarker(out->model_id);
    if (w.code() == StatusCode::kInvalidArgument) {  // a user's file holds the name: never overwritten
      out->error = w.message();
      return Status::Ok();
    }
    MS_RETURN_IF_ERROR(w);
    out->marker_written = true;
  }
  if (!has_marker || !rs.marker)
    MS_RETURN_IF_ERROR(journal.Append({MarkerEvent(rs.repo, out->model_id, true)}).status());
  return Status::Ok();
}

// Empty regular files at the top of the root named like a model id that no complete repo
// justifies. Other files are never touched.
Status RemoveStrayMarkers(Journal& journal, storage::Dir& root,
                          const std::set<std::string>& justified, RebuildReport* report) {
  MS_ASSIGN_OR_RETURN(auto names, root.List());
  std::map<std::string, std::string> repo_of;  // model id -> repo claiming it in the log
  for (const auto& [repo, rs] : journal.state().repos) repo_of[ModelIdOf(rs)] = repo;
  for (const auto& n : names) {
    if (n.empty() || n[0] == '.' || n == "models" || justified.count(n)) continue;
    if (!ValidateModelId(n).ok()) continue;
    auto st = root.Stat(n);
    if (!st.ok() || st->type != storage::FileInfo::Type::kFile || st->size != 0) continue;
    MS_RETURN_IF_ERROR(root.Unlink(n));
    MS_RETURN_IF_ERROR(root.Sync());
    report->stray_markers_removed.push_back(n);
    auto it = repo_of.find(n);
    if (it != repo_of.end() && journal.state().repos.at(it->second).marker)
      MS_RETURN_IF_ERROR(journal.Append({MarkerEvent(it->second, n, false)}).status());
  }
  return Status::Ok();
}

// What a converted revision was made from, if any (converter "" otherwise).
const v1::Derivation* DerivationOf(const RepoState& rs) {
  auto rev = rs.revisions.find(rs.active_commit);
  if (rev == rs.revisions.end() || rev->second.derived_from.converter().empty()) return nullptr;
  return &rev->second.derived_from;
}

// Converts a model whose outputs are gone again from its source, as it was converted (same
// converter options; the source must still have the recorded sha256).
void Reconvert(const Env& env, const std::string& root, const RepoState& rs,
               const v1::Derivation& d, RebuildRepo* rr) {
  const std::string source = ConvertSourcePath(root, d);
  if (source.empty()) {
    rr->error = "converted from " + d.source() + ", which is neither a path nor a hub source this root holds";
    return;
  }
  ConvertModelOptions co;
  co.root = root;
  co.source = source;
  co.model_id = rr->model_id;
  co.repo = rs.repo;
  co.quantize_bits = static_cast<int>(d.quantize_bits());
  co.source_label = d.source();
  co.source_repo = d.source_repo();
  co.source_commit = d.source_commit();
  co.source_file = d.source_file();
  co.expect_source_sha256 = d.source_sha256();
  auto c = ConvertModel(env, co);
  if (!c.ok()) {
    rr->error = "converting again from " + source + " failed: " + c.status().message();
    return;
  }
  rr->reconverted = true;
  rr->reconverted_from = source;
  rr->dir_rebuilt = true;
  rr->marker_written = !c->summary.marker_path.empty();
  rr->loadable = true;
  rr->commit = c->summary.commit;
}

}  // namespace

bool RebuildReport::complete() const {
  for (const auto& r : repos)
    if (!r.error.empty() || (!r.missing.empty() && !r.fetched && !r.reconverted)) return false;
  return true;
}

Result<RebuildReport> Rebuild(const Env& env, const RebuildOptions& o) {
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, o.root, /*create=*/false));
  RebuildReport report;
  std::vector<RepoState> to_fetch, to_reconvert;
  {
    MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, o.wait_for_lock));
    MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, false));
    MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*root_dir));
    std::set<std::string> justified;
    // Copy: Append() changes the state while we iterate.
    std::map<std::string, RepoState> repos = journal->state().repos;
    for (const auto& [repo, rs] : repos) {
      if (!HasActiveFiles(rs)) continue;
      RebuildRepo rr;
      MS_RETURN_IF_ERROR(RebuildRepoLocal(*journal, *root_dir, *blobs, rs, &rr));
      if (rr.missing.empty()) {
        if (rr.loadable) justified.insert(rr.model_id);
      }
      else if (DerivationOf(rs))
        to_reconvert.push_back(rs);  // local work: with or without --fetch
      else if (o.fetch)
        to_fetch.push_back(rs);
      report.repos.push_back(std::move(rr));
    }
    MS_RETURN_IF_ERROR(RemoveStrayMarkers(*journal, *root_dir, justified, &report));
    MS_RETURN_IF_ERROR(WriteModelsIndex(*root_dir, journal->state()));
  }  // the journal (and the lock) is released: Pull takes its own
  for (const auto& rs : to_fetch) {
    RebuildRepo* rr = nullptr;
    for (auto& r : report.repos)
      if (r.repo == rs.repo) rr = &r;
    auto f = Refetch(env, root, rs, o.endpoint);
    if (!f.ok()) {
      rr->error = f.status().message();
      continue;
    }
    rr->fetched = true;
    rr->bytes_fetched = f->bytes_fetched;
    rr->dir_rebuilt = true;
    rr->marker_written = true;
  }
  // After the fetches: a pull --convert source may have been among them.
  for (const auto& rs : to_reconvert) {
    for (auto& r : report.repos)
      if (r.repo == rs.repo) Reconvert(env, root, rs, *DerivationOf(rs), &r);
  }
  return report;
}

}  // namespace modelsync::engine
