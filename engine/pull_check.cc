#include "engine/pull_ctx.h"

#include "engine/glob.h"
#include "engine/repo_path.h"

namespace modelsync::engine {

namespace v1 = modelsync::v1;

// --- The loadability rule (engine/loadability.h) ------------------------------------
// Before any fetch: refuse GGUF-only / PyTorch-only repos (unless --any-format), and know
// whether a marker can be wanted at all.
Status PreCheck(Ctx& c, const std::string& commit, const std::vector<v1::FileEntry>& all,
                const std::vector<v1::FileEntry>& files) {
  c.load_in = LoadabilityInput{};
  c.load_in.repo = c.o.repo;
  for (const auto& f : all) c.load_in.all_paths.push_back(f.path());
  for (const auto& f : files) c.load_in.kept_paths.push_back(f.path());
  c.load_in.include = c.o.include;
  c.load_in.exclude = c.o.exclude;
  c.load_in.any_format = c.o.any_format;
  MS_ASSIGN_OR_RETURN(c.listing, LoadabilityOfListing(c.load_in));
  c.want_marker = c.listing.loadable();
  c.checked = false;
  // The same commit and file set, already found not to load: the verdict stands (the bytes
  // of a commit never change), so an unchanged pull does no work.
  const auto& st = c.journal->state();
  if (auto it = st.repos.find(c.o.repo); it != st.repos.end() && c.want_marker) {
    const RepoState& rs = it->second;
    bool same = rs.active_commit == commit && rs.materialized.size() == files.size();
    for (const auto& f : files) same = same && rs.materialized.count(f.path());
    if (same && !rs.unloadable.empty()) {
      c.want_marker = false;
      c.checked = true;
      c.on_disk.kind = Loadability::Kind::kNotLoadable;
      c.on_disk.reason = rs.unloadable;
    }
  }
  return Status::Ok();
}

// The rule on the files on disk (after they are verified and in place).
Status CheckOnDisk(Ctx& c) {
  if (c.checked) return Status::Ok();
  MS_ASSIGN_OR_RETURN(c.on_disk, CheckLoadable(c.root + "/models/" + c.o.repo, c.load_in));
  c.checked = true;
  if (!c.on_disk.loadable()) c.want_marker = false;
  return Status::Ok();
}

// The verdict to report: the disk's once checked, else the listing's.
const Loadability& Verdict(const Ctx& c) { return c.checked ? c.on_disk : c.listing; }

void FillModelSummary(Ctx& c) {
  const Loadability& l = Verdict(c);
  if (!c.sum) return;
  c.sum->marker_note = l.reason;
  if (l.loadable() && c.checked) {
    c.sum->model_checked = true;
    c.sum->model_type = l.report.model_type;
    c.sum->quantization = l.report.QuantSummary();
    c.sum->tensors = l.report.tensors;
    c.sum->parameters = l.report.parameters;
  }
}
// ----------------------------------------------------------------------------------------

// The target files: the manifest filtered by the globs, every path validated.
Result<std::vector<v1::FileEntry>> TargetFiles(const std::vector<v1::FileEntry>& all,
                                               const PullOptions& o) {
  PathFilter filter(o.include, o.exclude);
  std::vector<v1::FileEntry> out;
  std::vector<std::string> kept;
  for (const auto& f : all) {
    MS_RETURN_IF_ERROR(ValidateRepoPath(f.path()).With("the hub listed an unsafe path in " +
                                                       o.repo + "; refusing to write anything"));
    if (f.size() > kMaxFileBytes)
      return Status::InvalidArgument(
          "the hub listed '" + ShowName(f.path()) + "' in " + o.repo + " with a size of " +
          std::to_string(f.size()) + " bytes (over " + std::to_string(kMaxFileBytes) +
          "): refusing the listing before planning or fetching anything");
    if (PathComponents(f.path()).size() > kMaxPathDepth)
      return Status::InvalidArgument(
          "the hub listed '" + ShowName(f.path()) + "' in " + o.repo + ", nested " +
          std::to_string(PathComponents(f.path()).size()) + " directories deep (more than " +
          std::to_string(kMaxPathDepth) + "): refusing to write anything");
    if (filter.Keep(f.path())) {
      out.push_back(f);
      kept.push_back(f.path());
    }
  }
  MS_RETURN_IF_ERROR(CheckCaseCollisions(kept, "the listing of " + o.repo));
  return out;
}

}  // namespace modelsync::engine
