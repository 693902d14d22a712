#include "engine/add_local.h"

#include <climits>
#include <cstdlib>

#include "base/fs.h"
#include "base/hash.h"
#include "engine/event_builders.h"
#include "engine/file_hash.h"
#include "engine/journal.h"
#include "engine/loadability.h"
#include "engine/materializer.h"
#include "engine/model_index.h"
#include "engine/model_check.h"
#include "engine/repo_path.h"
#include "engine/root_path.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

std::string LfsPointerText(const std::string& sha, uint64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha + "\nsize " +
         std::to_string(size) + "\n";
}

// The regular files below dir, source-relative ("a/b.json"); .git/ and .cache/ at the top are
// skipped. A symlink or special file is refused, naming it: add-local copies regular files.
Status ListSource(storage::Dir& dir, const std::string& prefix, const std::string& top,
                  std::vector<std::string>* out) {
  MS_ASSIGN_OR_RETURN(auto names, dir.List());
  for (const auto& n : names) {
    const std::string rel = prefix.empty() ? n : prefix + "/" + n;
    MS_ASSIGN_OR_RETURN(auto info, dir.Stat(n));
    if (info.type == storage::FileInfo::Type::kDir) {
      if (prefix.empty() && (n == ".git" || n == ".cache")) continue;
      MS_RETURN_IF_ERROR(ValidateRepoPath(rel).With("in " + top));
      if (PathComponents(rel).size() >= kMaxPathDepth)
        return Status::InvalidArgument(top + "/" + rel + " is nested too deeply");
      MS_ASSIGN_OR_RETURN(auto sub, dir.OpenDir(n));
      MS_RETURN_IF_ERROR(ListSource(*sub, rel, top, out));
    } else if (info.type == storage::FileInfo::Type::kFile) {
      MS_RETURN_IF_ERROR(ValidateRepoPath(rel).With("in " + top));
      out->push_back(rel);
    } else {
      return Status::InvalidArgument(
          top + "/" + rel + " is " +
          (info.type == storage::FileInfo::Type::kSymlink ? "a symlink" : "not a regular file") +
          ": add-local copies regular files only (copy the model with `cp -rL` first" +
          (top.find("/snapshots/") != std::string::npos
               ? "; for a Hugging Face cache snapshot, `modelsync import --hf-cache` adopts its "
                 "blobs and `modelsync pull` then lays the model out without downloading it)"
               : ")"));
    }
  }
  return Status::Ok();
}

// Copies src_root/rel into to/to_name (created afresh, fsynced), hashing with sha256 on the
// way. Returns the digest and the size.
Result<std::pair<std::string, uint64_t>> CopyHashing(storage::Dir& src_root,
                                                     const std::string& rel, storage::Dir& to,
                                                     const std::string& to_name) {
  std::unique_ptr<storage::Dir> parent;
  storage::Dir* from = &src_root;
  std::string name = rel;
  if (size_t slash = rel.rfind('/'); slash != std::string::npos) {
    MS_ASSIGN_OR_RETURN(parent, storage::OpenDirPath(src_root, rel.substr(0, slash), false));
    from = parent.get();
    name = rel.substr(slash + 1);
  }
  MS_ASSIGN_OR_RETURN(auto in, from->OpenFile(name, storage::OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(auto info, in->Stat());
  MS_ASSIGN_OR_RETURN(auto out, to.OpenFile(to_name, storage::OpenMode::kCreateTruncate, 0644));
  Hasher h(HashKind::kSha256, info.size);
  constexpr size_t kBuf = 1u << 20;
  std::unique_ptr<char[]> buf(new char[kBuf]);
  uint64_t off = 0;
  for (;;) {
    MS_ASSIGN_OR_RETURN(size_t n, in->PRead(off, buf.get(), kBuf));
    if (n == 0) break;
    h.Update(buf.get(), n);
    MS_RETURN_IF_ERROR(out->PWrite(off, std::string_view(buf.get(), n)));
    off += n;
  }
  if (off != info.size)
    return Status::IOError(in->path() + " changed size while it was copied");
  MS_RETURN_IF_ERROR(out->DataSync());
  return std::make_pair(h.FinishHex(), off);
}

struct CheckedSource {
  std::vector<std::string> paths;
  ModelReport report;
};

// The directory's regular files and the model checks' report; every refusal is an argument
// error (exit 2), before anything is written.
Result<CheckedSource> CheckSource(const Env& env, const AddLocalOptions& o) {
  auto src = env.fs->OpenRoot(o.dir, false);
  if (!src.ok()) return Status::InvalidArgument(o.dir + " is not a directory we can read (" +
                                                src.status().message() + ")");
  std::vector<std::string> paths;
  MS_RETURN_IF_ERROR(ListSource(**src, "", o.dir, &paths));
  std::sort(paths.begin(), paths.end());
  MS_ASSIGN_OR_RETURN(ManifestKind kind, CheckManifest(o.dir, paths, false));
  if (kind == ManifestKind::kNoWeights)
    return Status::InvalidArgument(o.dir + " holds no weight files: add-local is for models");
  auto checked = CheckModelDir(o.dir, paths);
  if (!checked.ok() && checked.status().code() == StatusCode::kPermanent) {
    // The model checks refused the directory given: an argument error (exit 2), before
    // anything is written.
    return Status::InvalidArgument(o.dir + " is not a model MLX can load: " +
                                   checked.status().message());
  }
  return CheckedSource{std::move(paths), std::move(*checked)};
}

Result<PullSummary> AddChecked(const Env& env, const AddLocalOptions& o, const std::string& root,
                               Journal* journal, CheckedSource checked);

}  // namespace

Result<PullSummary> AddLocal(const Env& env, const AddLocalOptions& o) {
  if (o.model_id.empty()) return Status::InvalidArgument("--id MODEL_ID is required");
  MS_RETURN_IF_ERROR(ValidateModelId(o.model_id));
  std::string repo = o.repo.empty() ? "local/" + o.model_id : o.repo;
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  if (o.root.empty()) return Status::InvalidArgument("no root given (use --root or MODELSYNC_ROOT)");
  MS_ASSIGN_OR_RETURN(CheckedSource checked, CheckSource(env, o));
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, o.root, /*create=*/true));
  JournalOptions jo;
  jo.clock = env.clock;
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(root, false, jo));
  return AddChecked(env, o, root, journal.get(), std::move(checked));
}

Result<PullSummary> AddLocalTo(const Env& env, const AddLocalOptions& o, const std::string& root,
                               Journal& journal) {
  MS_RETURN_IF_ERROR(ValidateModelId(o.model_id));
  MS_RETURN_IF_ERROR(ValidateRepoId(o.repo.empty() ? "local/" + o.model_id : o.repo));
  MS_ASSIGN_OR_RETURN(CheckedSource checked, CheckSource(env, o));
  return AddChecked(env, o, root, &journal, std::move(checked));
}

namespace {

Result<PullSummary> AddChecked(const Env& env, const AddLocalOptions& o, const std::string& root,
                               Journal* journal, CheckedSource checked) {
  const std::string repo = o.repo.empty() ? "local/" + o.model_id : o.repo;
  const std::vector<std::string>& paths = checked.paths;
  const ModelReport& report = checked.report;
  MS_ASSIGN_OR_RETURN(auto src, env.fs->OpenRoot(o.dir, false));
  MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, true));
  MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*root_dir));
  // One owner per model id, and never over a user's file (as pull).
  std::string previous;
  if (auto it = journal->state().repos.find(repo); it != journal->state().repos.end())
    previous = it->second.model_id;
  for (const auto& owner : journal->state().OwnersOf(o.model_id))
    if (owner != repo)
      return Status::InvalidArgument("model id '" + o.model_id + "' belongs to " + owner +
                                     ": choose another --id");
  {
    Materializer probe(*root_dir, *blobs);
    MS_RETURN_IF_ERROR(probe.CheckMarkerSlot(o.model_id));
  }

  v1::Manifest manifest;
  std::string listing;
  std::vector<v1::Event> verified;
  std::vector<MaterialFile> mf;
  PullSummary sum;
  for (const auto& p : paths) {
    // The copy is staged in blobs/ under a temporary name (storage/LAYOUT.md: gc removes
    // one a crash left), hashed as it is written, then adopted under its digest.
    std::pair<std::string, uint64_t> copied;
    if (o.move_files) {
      // The directory is ours (convert's staging, on the store's file system): hash each
      // file where it is and move it in; no copy.
      if (p.find('/') != std::string::npos)
        return Status::InvalidArgument(o.dir + "/" + p + ": move_files takes a flat directory");
      MS_ASSIGN_OR_RETURN(auto f, src->OpenFile(p, storage::OpenMode::kRead));
      if (auto known = o.known_sha256.find(p); known != o.known_sha256.end()) {
        MS_ASSIGN_OR_RETURN(storage::FileInfo info, f->Stat());
        copied = {known->second, info.size};
      } else {
        MS_ASSIGN_OR_RETURN(FileHashResult h, HashFile(*f, HashKind::kSha256));
        copied = {h.hex, h.size};
      }
      MS_RETURN_IF_ERROR(blobs->Adopt(*src, p, copied.first));
    } else {
      MS_ASSIGN_OR_RETURN(copied, CopyHashing(*src, p, blobs->dir(), kAddLocalTemp));
      MS_RETURN_IF_ERROR(blobs->Adopt(blobs->dir(), kAddLocalTemp, copied.first));
    }
    const auto& [sha, size] = copied;
    auto* fe = manifest.add_files();
    fe->set_path(p);
    fe->set_size(size);
    fe->set_lfs_sha256(sha);
    fe->set_git_oid(GitBlobSha1Hex(LfsPointerText(sha, size)));
    listing += p + std::string(1, '\0') + std::to_string(size) + std::string(1, '\0') + sha + "\n";
    verified.push_back(BlobVerifiedEvent(sha, size));
    mf.push_back({p, sha});
    sum.bytes_total += size;
  }
  std::string commit = GitBlobSha1Hex(listing);  // sha1 over the manifest listing
  std::vector<v1::Event> first;
  {
    v1::Event e;
    auto* rr = e.mutable_revision_resolved();
    rr->set_repo(repo);
    rr->set_ref("local");
    rr->set_commit(commit);
    if (o.derived.converter.empty()) {
      rr->set_endpoint("local:" + o.dir);
    } else {
      rr->set_endpoint("convert:" + o.derived.source);
      auto* d = rr->mutable_derived_from();
      d->set_converter(o.derived.converter);
      d->set_source(o.derived.source);
      d->set_source_sha256(o.derived.source_sha256);
      d->set_source_size(o.derived.source_size);
      d->set_quantize_bits(o.derived.quantize_bits);
      d->set_source_repo(o.derived.source_repo);
      d->set_source_commit(o.derived.source_commit);
      d->set_source_file(o.derived.source_file);
      for (const auto& in : o.derived.inputs) {
        auto* x = d->add_inputs();
        x->set_path(in.path);
        x->set_sha256(in.sha256);
        x->set_size(in.size);
      }
    }
    *rr->mutable_manifest() = manifest;
    first.push_back(std::move(e));
  }
  for (auto& e : verified) first.push_back(std::move(e));
  if (previous != o.model_id) first.push_back(ModelIdAssignedEvent(repo, o.model_id, previous));
  MS_RETURN_IF_ERROR(journal->Append(std::move(first)).status());

  Materializer mat(*root_dir, *blobs);
  MS_RETURN_IF_ERROR(mat.Materialize(repo, mf));
  // The same loadability rule as pull, on the files as they are now in place.
  LoadabilityInput li;
  li.repo = repo;
  li.all_paths = li.kept_paths = paths;
  li.any_format = true;
  MS_ASSIGN_OR_RETURN(Loadability load, CheckLoadable(root + "/models/" + repo, li));
  if (!load.loadable()) {  // the directory given is not a model: an argument error (exit 2)
    return Status::InvalidArgument(o.dir + " is not a model MLX can load: " + load.reason);
  }
  std::vector<v1::Event> act;
  for (const auto& f : mf) act.push_back(FileMaterializedEvent(repo, commit, f.path, f.content_id));
  v1::Event ra;
  ra.mutable_revision_activated()->set_repo(repo);
  ra.mutable_revision_activated()->set_commit(commit);
  ra.mutable_revision_activated()->set_model_id(o.model_id);
  ra.mutable_revision_activated()->set_ref("local");
  act.push_back(std::move(ra));
  MS_RETURN_IF_ERROR(journal->Append(std::move(act)).status());
  MS_RETURN_IF_ERROR(mat.WriteMarker(o.model_id));
  MS_RETURN_IF_ERROR(journal->Append({MarkerWrittenEvent(repo, o.model_id)}).status());
  if (!previous.empty() && previous != o.model_id) {
    if (mat.HasMarker(previous))  // recorded before the file goes
      MS_RETURN_IF_ERROR(journal->Append({MarkerRemovedEvent(repo, previous)}).status());
    MS_RETURN_IF_ERROR(mat.RemoveMarker(previous));
  }
  MS_RETURN_IF_ERROR(WriteModelsIndex(*root_dir, journal->state()));
  sum.marker_written = true;

  sum.repo = repo;
  sum.ref = "local";
  sum.commit = commit;
  sum.model_dir = root + "/models/" + repo;
  sum.marker_path = root + "/" + o.model_id;
  sum.files = paths.size();
  sum.model_checked = true;
  sum.model_type = report.model_type;
  sum.quantization = report.QuantSummary();
  sum.tensors = report.tensors;
  sum.parameters = report.parameters;
  return sum;
}

}  // namespace
}  // namespace modelsync::engine
