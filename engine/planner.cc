#include "engine/planner.h"

#include <algorithm>

#include "base/hash.h"

namespace modelsync::engine {
namespace {

bool ValidId(const std::string& id) { return IsHex(id, 40) || IsHex(id, 64); }

void Split(ByteRange r, uint64_t chunk, std::vector<ByteRange>* out) {
  if (chunk == 0) {
    out->push_back(r);
    return;
  }
  for (uint64_t b = r.begin; b < r.end; b += chunk) out->push_back({b, std::min(r.end, b + chunk)});
}

}  // namespace

const std::string& ContentIdOf(const modelsync::v1::FileEntry& f) {
  return f.lfs_sha256().empty() ? f.git_oid() : f.lfs_sha256();
}

const char* FileActionName(FileAction a) {
  switch (a) {
    case FileAction::kIntact:
      return "intact";
    case FileAction::kLink:
      return "link";
    case FileAction::kResume:
      return "resume";
    case FileAction::kFetch:
      return "fetch";
  }
  return "?";
}

bool Plan::NothingToDo() const {
  if (!removals.empty() || !remove_blobs.empty() || !discard_transfers.empty() || clean_staging ||
      !remove_markers.empty() || build_dir || activate || write_marker)
    return false;
  for (const auto& f : files)
    if (f.action != FileAction::kIntact) return false;
  return true;
}

Result<Plan> MakePlan(const PlanInput& in, const State& state, const Observation& obs,
                      const PlanOptions& opts) {
  Plan plan;
  plan.repo = in.repo;
  plan.commit = in.commit;
  plan.model_id = in.model_id;
  plan.next_transfer_id = state.next_transfer_id;
  plan.clean_staging = obs.staging_exists;

  std::vector<const modelsync::v1::FileEntry*> files;
  for (const auto& f : in.files) files.push_back(&f);
  std::sort(files.begin(), files.end(), [](auto* a, auto* b) { return a->path() < b->path(); });
  for (size_t i = 0; i < files.size(); ++i) {
    if (i > 0 && files[i]->path() == files[i - 1]->path())
      return Status::InvalidArgument("the manifest lists '" + files[i]->path() + "' twice");
    if (!ValidId(ContentIdOf(*files[i])))
      return Status::InvalidArgument("the manifest's content id for '" + files[i]->path() +
                                     "' is malformed");
  }

  static const RepoState kNoRepo;
  auto rit = state.repos.find(in.repo);
  const RepoState& repo = rit == state.repos.end() ? kNoRepo : rit->second;

  // Which content is available as a verified blob, which blobs contradict the manifest.
  std::map<std::string, uint64_t> wanted;  // content id -> size (first path's size wins)
  for (auto* f : files) {
    auto [it, fresh] = wanted.emplace(ContentIdOf(*f), f->size());
    if (!fresh && it->second != f->size())
      return Status::InvalidArgument("the manifest gives content " + it->first +
                                     " two different sizes (at '" + f->path() + "')");
  }
  auto good_blob = [&](const std::string& id, uint64_t size) {
    auto o = obs.blobs.find(id);
    return o != obs.blobs.end() && o->second == size;
  };
  for (const auto& [id, size] : wanted) {
    auto o = obs.blobs.find(id);
    if (o != obs.blobs.end() && o->second != size) plan.remove_blobs.push_back(id);
  }

  // Live transfers by content id, for resume (best first: most committed, then lowest id).
  std::map<std::string_view, std::vector<const TransferState*>> transfers;
  for (const auto& [tid, t] : state.transfers)
    if (wanted.count(t.content_id)) transfers[t.content_id].push_back(&t);
  static const std::vector<const TransferState*> kNone;
  auto transfers_of = [&](const std::string& id) -> const std::vector<const TransferState*>& {
    auto it = transfers.find(id);
    return it == transfers.end() ? kNone : it->second;
  };

  std::map<std::string, std::string> fetcher;  // content id -> path that fetches it
  std::set<uint64_t> discard;
  for (auto* f : files) {
    FilePlan fp;
    fp.path = f->path();
    fp.content_id = ContentIdOf(*f);
    fp.size = f->size();
    fp.lfs = IsLfs(*f);
    const bool blob = good_blob(fp.content_id, fp.size);
    if (blob) {
      auto m = obs.model_files.find(fp.path);
      bool recorded = false;
      if (auto b = state.blobs.find(fp.content_id); b != state.blobs.end())
        recorded = b->second == fp.size;
      if (recorded && m != obs.model_files.end() &&
          IsMaterialized(m->second, fp.content_id, fp.size, repo.materialized, fp.path)) {
        fp.action = FileAction::kIntact;
      } else {
        fp.action = FileAction::kLink;
        fp.verify_blob = !recorded;
      }
      // Transfers of content we already hold are useless.
      for (auto* t : transfers_of(fp.content_id)) discard.insert(t->id);
    } else if (auto fe = fetcher.find(fp.content_id); fe != fetcher.end()) {
      fp.action = FileAction::kLink;
      fp.fetched_by = fe->second;
    } else {
      fetcher[fp.content_id] = fp.path;
      const TransferState* best = nullptr;
      for (auto* t : transfers_of(fp.content_id)) {
        auto p = obs.partials.find(t->id);
        bool usable = t->size == fp.size && p != obs.partials.end() && p->second == fp.size;
        if (!usable) {
          discard.insert(t->id);
          continue;
        }
        if (!best) {
          best = t;
          continue;
        }
        uint64_t a = t->committed.CoveredBytes(), b = best->committed.CoveredBytes();
        if (a > b || (a == b && t->id < best->id)) {
          discard.insert(best->id);
          best = t;
        } else {
          discard.insert(t->id);
        }
      }
      std::vector<ByteRange> missing;
      if (best) {
        fp.action = FileAction::kResume;
        fp.transfer_id = best->id;
        missing = best->committed.Missing(fp.size);
        uint64_t miss = 0;
        for (auto r : missing) miss += r.size();
        fp.committed_bytes = fp.size - miss;
      } else {
        fp.action = FileAction::kFetch;
        fp.transfer_id = plan.next_transfer_id++;
        fp.in_memory = fp.size <= opts.small_file_bytes;
        if (fp.size > 0) missing.push_back({0, fp.size});
        plan.allocate_bytes += fp.size;
      }
      for (auto r : missing) Split(r, opts.chunk_size, &fp.fetch);
      for (auto r : fp.fetch) plan.fetch_bytes += r.size();
      plan.present_bytes += fp.committed_bytes;
    }
    if (blob && fetcher.count(fp.content_id) == 0) {
      fetcher[fp.content_id] = "";  // counted once below
      plan.present_bytes += fp.size;
    }
    plan.files.push_back(std::move(fp));
  }
  for (const auto& [id, size] : wanted) plan.total_bytes += size;
  plan.discard_transfers.assign(discard.begin(), discard.end());

  // Removals: the active revision's paths the target no longer has.
  std::set<std::string_view> target_paths;
  for (auto* f : files) target_paths.insert(target_paths.end(), f->path());  // sorted above
  for (const auto& [path, id] : repo.materialized)
    if (!target_paths.count(path)) plan.removals.push_back(path);

  // What gc can free afterwards: content the old revision used that nothing else will.
  std::set<std::string_view> still_used;
  for (const auto& [id, size] : wanted) still_used.insert(still_used.end(), id);
  for (const auto& [name, other] : state.repos)
    if (name != in.repo)
      for (const auto& [p, id] : other.materialized) still_used.insert(id);
  std::set<std::string_view> freed;
  for (const auto& [path, id] : repo.materialized)
    if (!still_used.count(id)) freed.insert(id);
  for (std::string_view id : freed)
    if (auto b = state.blobs.find(std::string(id)); b != state.blobs.end())
      plan.free_bytes += b->second;

  // The user's files: kept wherever the directory goes.
  plan.user_files = UserFiles(obs, target_paths, repo.materialized);
  std::set<std::string_view> user(plan.user_files.begin(), plan.user_files.end());

  // The directory: rebuilt unless every target file is intact and nothing else of ours is there.
  bool all_intact = obs.model_dir_exists;
  for (const auto& fp : plan.files) all_intact = all_intact && fp.action == FileAction::kIntact;
  for (const auto& [path, of] : obs.model_files)
    if (!target_paths.count(path) && !user.count(path)) all_intact = false;
  plan.build_dir = !all_intact || !plan.removals.empty();

  // plan.files is in path order, as is repo.materialized.
  bool same_files = repo.materialized.size() == plan.files.size();
  auto mit = repo.materialized.begin();
  for (size_t i = 0; same_files && i < plan.files.size(); ++i, ++mit)
    same_files = mit->first == plan.files[i].path && mit->second == plan.files[i].content_id;
  plan.activate = plan.build_dir || repo.active_commit != in.commit || !same_files;

  // Markers. The requested one is valid now only if the log says so and the active
  // revision's files are all on disk with their sizes (a cheap check; verify re-hashes).
  bool valid_now = repo.marker && repo.model_id == in.model_id && !repo.active_commit.empty() &&
                   obs.model_dir_exists;
  for (const auto& [path, id] : repo.materialized) {
    auto m = obs.model_files.find(path);
    auto b = state.blobs.find(id);
    if (m == obs.model_files.end() || m->second.type != ObservedFile::Type::kFile ||
        b == state.blobs.end() || m->second.size != b->second)
      valid_now = false;
  }
  // A crash between the directory swap and RevisionActivated leaves the disk wholly at the
  // target while the log still names the old revision: the marker is valid for that too.
  if (repo.marker && repo.model_id == in.model_id && all_intact && !valid_now)
    valid_now = true;
  bool have = obs.markers.count(in.model_id) > 0;
  bool logged = repo.marker && repo.model_id == in.model_id;
  if (!in.want_marker) {
    if (have || logged) plan.remove_markers.push_back(in.model_id);
    return plan;
  }
  if (have && !valid_now) {
    plan.remove_markers.push_back(in.model_id);
    have = false;
  }
  plan.write_marker = !have || !logged;
  return plan;
}

bool IsMaterialized(const ObservedFile& f, const std::string& cid, uint64_t size,
                    const std::map<std::string, std::string>& materialized,
                    const std::string& path) {
  if (f.type != ObservedFile::Type::kFile) return false;
  if (f.blob_id == cid) return true;
  if (!f.blob_id.empty() || !f.read_only || !(f.other_device || f.clone_fs) || f.size != size)
    return false;
  auto m = materialized.find(path);
  return m != materialized.end() && m->second == cid;
}

std::vector<std::string> UserFiles(const Observation& obs, const std::set<std::string_view>& target,
                                   const std::map<std::string, std::string>& materialized) {
  std::vector<std::string> out;
  for (const auto& [path, of] : obs.model_files)
    if (!target.count(path) && !materialized.count(path) &&
        of.type == ObservedFile::Type::kFile && of.blob_id.empty())
      out.push_back(path);
  return out;
}

std::string DescribePlan(const Plan& p) {
  std::string s = "plan " + p.repo + "@" + p.commit + "\n";
  for (const auto& f : p.files) {
    s += "  " + std::string(FileActionName(f.action)) + " " + f.path + " (" +
         f.content_id.substr(0, 12) + ", " + std::to_string(f.size) + " bytes";
    if (f.transfer_id) s += ", transfer " + std::to_string(f.transfer_id);
    if (!f.fetch.empty()) s += ", " + std::to_string(f.fetch.size()) + " ranges";
    if (f.verify_blob) s += ", re-verify blob";
    if (!f.fetched_by.empty()) s += ", after " + f.fetched_by;
    s += ")\n";
  }
  for (const auto& r : p.removals) s += "  remove " + r + "\n";
  for (const auto& b : p.remove_blobs) s += "  remove bad blob " + b + "\n";
  for (auto t : p.discard_transfers) s += "  discard transfer " + std::to_string(t) + "\n";
  for (const auto& m : p.remove_markers) s += "  remove marker " + m + "\n";
  for (const auto& u : p.user_files) s += "  keep user file " + u + "\n";
  if (p.clean_staging) s += "  clean staging\n";
  if (p.build_dir) s += "  build and swap the model directory\n";
  if (p.activate) s += "  activate\n";
  if (p.write_marker) s += "  write marker " + p.model_id + "\n";
  s += "  bytes: total " + std::to_string(p.total_bytes) + ", fetch " +
       std::to_string(p.fetch_bytes) + ", present " + std::to_string(p.present_bytes) +
       ", allocate " + std::to_string(p.allocate_bytes) + ", free " + std::to_string(p.free_bytes) +
       "\n";
  return s;
}

}  // namespace modelsync::engine
