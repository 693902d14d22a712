#include "engine/loadability.h"

namespace modelsync::engine {
namespace {

std::string FilterText(const LoadabilityInput& in) {
  std::string s;
  for (const auto& g : in.include) s += (s.empty() ? "" : " ") + std::string("--include '") + g + "'";
  for (const auto& g : in.exclude) s += (s.empty() ? "" : " ") + std::string("--exclude '") + g + "'";
  return s.empty() ? "the filter" : s;
}

}  // namespace

Result<Loadability> LoadabilityOfListing(const LoadabilityInput& in) {
  Loadability l;
  MS_ASSIGN_OR_RETURN(ManifestKind all, CheckManifest(in.repo, in.all_paths, true));
  if (all == ManifestKind::kNoWeights) {
    l.kind = Loadability::Kind::kPlainFiles;
    l.reason = NoWeightsNote(in.repo) + "; no marker is written for it";
    return l;
  }
  MS_ASSIGN_OR_RETURN(ManifestKind kept, CheckManifest(in.repo, in.kept_paths, in.any_format));
  if (kept == ManifestKind::kNoWeights) {
    l.kind = Loadability::Kind::kFilteredOut;
    l.reason = FilterText(in) + " keeps " + std::to_string(in.kept_paths.size()) + " of " +
               std::to_string(in.all_paths.size()) + " files of " + in.repo +
               " and none of its weight files: the files asked for were synced, but they are "
               "not a model ready to load, so no marker was written (drop the filter to get "
               "the model)";
    return l;
  }
  if (kept == ManifestKind::kOtherWeights) {
    l.kind = Loadability::Kind::kOtherFormat;
    l.reason = in.repo +
               " holds GGUF or PyTorch weights that MLX cannot load: downloaded as asked "
               "(--any-format), but no marker was written";
    return l;
  }
  return l;  // kModel: decided on disk
}

Result<Loadability> CheckLoadable(const std::string& model_dir, const LoadabilityInput& in) {
  MS_ASSIGN_OR_RETURN(Loadability l, LoadabilityOfListing(in));
  if (!l.loadable()) return l;
  auto rep = CheckModelDir(model_dir, in.kept_paths);
  if (!rep.ok()) {
    l.kind = Loadability::Kind::kNotLoadable;
    l.reason = rep.status().message() +
               ": the files are downloaded and verified but are not a loadable MLX model, so "
               "no marker was written";
    return l;
  }
  l.report = std::move(*rep);
  return l;
}

LoadabilityInput LoadabilityInputOf(const RepoState& rs) {
  LoadabilityInput in;
  in.repo = rs.repo;
  for (const auto& [path, cid] : rs.materialized) in.kept_paths.push_back(path);
  auto rev = rs.revisions.find(rs.active_commit);
  if (rev != rs.revisions.end())
    for (const auto& f : rev->second.files) in.all_paths.push_back(f.path());
  else
    in.all_paths = in.kept_paths;
  in.include = rs.active_include;
  in.exclude = rs.active_exclude;
  in.any_format = true;
  return in;
}

}  // namespace modelsync::engine
