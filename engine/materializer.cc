#include "engine/materializer.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <set>

#include "engine/layout.h"
#include "engine/repo_path.h"

namespace modelsync::engine {

using storage::Dir;
using storage::FileInfo;

namespace {
// (parent, leaf) of a repo-relative path; parent "" at the top.
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}
}  // namespace

Result<std::unique_ptr<Dir>> Materializer::OpenOrg(const std::string& repo, bool create) {
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  // With `create`, models/ and models/<org>/ are made durably (OpenDirPath: the parent of a
  // new entry is fsynced, and the entry removed again if that fails).
  return storage::OpenDirPath(root_, ModelsOrgRel(repo), create);
}

Status Materializer::CleanStaging(const std::string& repo) {
  auto org = OpenOrg(repo, false);
  if (!org.ok()) return org.status().IsNotFound() ? Status::Ok() : org.status();
  Dir& d = **org;
  const std::string name = RepoName(repo), old = OldName(repo), staging = StagingName(repo);
  bool changed = false;
  if (d.Stat(old).ok()) {
    if (!d.Stat(name).ok()) {
      MS_RETURN_IF_ERROR(d.Rename(old, d, name));
    } else {
      MS_RETURN_IF_ERROR(d.RemoveTree(old));
    }
    changed = true;
  }
  if (d.Stat(staging).ok()) {
    MS_RETURN_IF_ERROR(d.RemoveTree(staging));
    changed = true;
  }
  return changed ? d.Sync() : Status::Ok();
}

Status Materializer::Begin(const std::string& repo) {
  build_.reset();
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  MS_RETURN_IF_ERROR(CleanStaging(repo));
  auto b = std::make_unique<Build>();
  b->repo = repo;
  MS_ASSIGN_OR_RETURN(b->org, OpenOrg(repo, true));
  const std::string staging = StagingName(repo);
  MS_RETURN_IF_ERROR(b->org->MakeDir(staging));
  MS_ASSIGN_OR_RETURN(b->top, b->org->OpenDir(staging));
  b->clone = b->top->ClonesFiles();
  b->unsynced.insert("");
  build_ = std::move(b);
  return Status::Ok();
}

Result<Dir*> Materializer::DirOf(Build& b, const std::string& rel) {
  auto& chain = b.chain;
  if (rel.empty()) return b.top.get();
  while (!chain.empty() && rel != chain.back().first &&
         rel.compare(0, chain.back().first.size() + 1, chain.back().first + "/") != 0)
    chain.pop_back();
  Dir* at = chain.empty() ? b.top.get() : chain.back().second.get();
  std::string cur = chain.empty() ? "" : chain.back().first;
  if (cur == rel) return at;
  std::string rest = cur.empty() ? rel : rel.substr(cur.size() + 1);
  for (std::string_view comp : PathComponents(rest)) {
    cur += cur.empty() ? std::string(comp) : "/" + std::string(comp);
    bool made = false;
    MS_RETURN_IF_ERROR(at->MakeDir(comp, &made));
    if (made) {
      b.unsynced.insert(cur);
      b.unsynced.insert(SplitPath(cur).first);
    }
    MS_ASSIGN_OR_RETURN(auto d, at->OpenDir(comp));
    chain.emplace_back(cur, std::move(d));
    at = chain.back().second.get();
  }
  return at;
}

Status Materializer::LinkOne(Build& b, const std::string& path, const std::string& content_id) {
  auto [parent, leaf] = SplitPath(path);
  MS_ASSIGN_OR_RETURN(Dir * d, DirOf(b, parent));
  b.unsynced.insert(parent);
  if (b.clone) {
    // A reflink: an edit of the model file (after a chmod) stays in it; the blob and every
    // other model keep their bytes.
    Status c = blobs_.dir().Clone(content_id, *d, leaf, 0444);
    if (c.ok()) {
      ++b.stats.cloned;
      return Status::Ok();
    }
    if (c.code() != StatusCode::kInvalidArgument) return c;
    b.clone = false;  // this file system says no: hard links from here on
  }
  Status s = blobs_.dir().Link(content_id, *d, leaf);
  if (s.ok()) {
    ++b.stats.linked;
    return Status::Ok();
  }
  if (s.IsNotFound())
    return Status::NotFound("cannot build " + path + ": its blob " + blobs_.PathOf(content_id) +
                            " is missing (run `modelsync verify --repair` or pull again)");
  long e = s.detail();
  if (e != EXDEV && e != EPERM && e != EMLINK) return s;
  MS_RETURN_IF_ERROR(storage::CopyFile(blobs_.dir(), content_id, *d, leaf, 0444));
  ++b.stats.copied;
  if (auto sz = blobs_.Size(content_id); sz.ok()) b.stats.copied_bytes += *sz;
  return Status::Ok();
}

Status Materializer::Add(const std::string& path, const std::string& content_id) {
  if (!build_) return Status::InvalidArgument("Materializer::Add before Begin");
  MS_RETURN_IF_ERROR(ValidateRepoPath(path));
  if (!storage::BlobStore::IsValidId(content_id))
    return Status::InvalidArgument("malformed content id for '" + ShowName(path) + "'");
  if (build_->added.count(path)) return Status::Ok();
  MS_RETURN_IF_ERROR(LinkOne(*build_, path, content_id));
  build_->added.insert(path);
  return Status::Ok();
}

Result<std::unique_ptr<storage::File>> Materializer::Stage(const std::string& path) {
  if (!build_) return Status::InvalidArgument("Materializer::Stage before Begin");
  if (build_->clone) return Status::InvalidArgument("model files are reflinks here");
  MS_RETURN_IF_ERROR(ValidateRepoPath(path));
  if (build_->added.count(path) || build_->staged.count(path))
    return Status::InvalidArgument("'" + ShowName(path) + "' is in the new tree already");
  auto [parent, leaf] = SplitPath(path);
  MS_ASSIGN_OR_RETURN(Dir * d, DirOf(*build_, parent));
  build_->unsynced.insert(parent);
  MS_ASSIGN_OR_RETURN(auto f, d->OpenFile(leaf, storage::OpenMode::kCreateExclusive, 0444));
  build_->staged.insert(path);
  return f;
}

Status Materializer::SyncStaged(const std::string& path) {
  if (!build_ || !build_->staged.count(path))
    return Status::InvalidArgument("'" + ShowName(path) + "' was not staged");
  auto [parent, leaf] = SplitPath(path);
  MS_ASSIGN_OR_RETURN(Dir * d, DirOf(*build_, parent));
  MS_ASSIGN_OR_RETURN(auto f, d->OpenFile(leaf, storage::OpenMode::kRead));
  return f->Sync();
}

Status Materializer::Publish(const std::string& path, const std::string& content_id) {
  if (!build_ || !build_->staged.count(path))
    return Status::InvalidArgument("'" + ShowName(path) + "' was not staged");
  if (!storage::BlobStore::IsValidId(content_id))
    return Status::InvalidArgument("malformed content id for '" + ShowName(path) + "'");
  auto [parent, leaf] = SplitPath(path);
  MS_ASSIGN_OR_RETURN(Dir * d, DirOf(*build_, parent));
  MS_ASSIGN_OR_RETURN(auto linked, blobs_.LinkIn(*d, leaf, content_id));
  if (linked == storage::BlobStore::LinkedAs::kExisted) {
    // The blob is there already (a second path with the same bytes): the tree links it, as
    // Add would have.
    MS_RETURN_IF_ERROR(d->Unlink(leaf));
    build_->staged.erase(path);
    MS_RETURN_IF_ERROR(LinkOne(*build_, path, content_id));
  } else if (linked == storage::BlobStore::LinkedAs::kCopy) {
    ++build_->stats.copied;  // the staged file stays the model file
  } else {
    ++build_->stats.linked;
  }
  build_->staged.erase(path);
  build_->added.insert(path);
  return Status::Ok();
}

void Materializer::NoteSynced() {
  if (build_) build_->unsynced.clear();
}

Status Materializer::Materialize(const std::string& repo, const std::vector<MaterialFile>& files,
                                 MaterializeStats* stats,
                                 const std::vector<std::string>* user_files) {
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  std::vector<const MaterialFile*> sorted;
  for (const auto& f : files) {
    MS_RETURN_IF_ERROR(ValidateRepoPath(f.path));
    if (!storage::BlobStore::IsValidId(f.content_id))
      return Status::InvalidArgument("malformed content id for '" + ShowName(f.path) + "'");
    sorted.push_back(&f);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->path < b->path; });

  if (!build_ || build_->repo != repo) MS_RETURN_IF_ERROR(Begin(repo));
  // Whatever happens below, the next Materialize starts over (from CleanStaging).
  std::unique_ptr<Build> bd = std::move(build_);
  Dir* org = bd->org.get();
  std::unique_ptr<Dir>& top = bd->top;
  const std::string name = RepoName(repo), staging = StagingName(repo);
  for (const MaterialFile* f : sorted) {
    // Added ahead: linked to the same blob (Add takes a path once; a path keeps its content
    // within a plan).
    if (bd->added.count(f->path)) continue;
    if (bd->staged.count(f->path)) {  // staged, never published (its adoption failed)
      auto [parent, leaf] = SplitPath(f->path);
      MS_ASSIGN_OR_RETURN(Dir * d, DirOf(*bd, parent));
      bd->unsynced.insert(parent);
      MS_RETURN_IF_ERROR(d->Unlink(leaf));
      bd->staged.erase(f->path);
    }
    MS_RETURN_IF_ERROR(LinkOne(*bd, f->path, f->content_id));
  }
  auto dir_of = [&](const std::string& rel) { return DirOf(*bd, rel); };
  auto& chain = bd->chain;
  auto& unsynced = bd->unsynced;
  MaterializeStats& st = bd->stats;

  // The user's files, from the current tree into the new one.
  if (user_files && !user_files->empty() && org->Stat(name).ok()) {
    std::set<std::string> target;
    for (const MaterialFile* f : sorted) target.insert(f->path);
    MS_ASSIGN_OR_RETURN(auto cur, org->OpenDir(name));
    for (const auto& path : *user_files) {
      MS_RETURN_IF_ERROR(ValidateRepoPath(path));
      if (target.count(path)) continue;
      auto [parent, leaf] = SplitPath(path);
      std::unique_ptr<Dir> src_holder;
      Dir* src = cur.get();
      if (!parent.empty()) {
        auto opened = storage::OpenDirPath(*cur, parent, false);
        if (!opened.ok()) {
          if (opened.status().IsNotFound()) continue;  // gone since it was observed
          return opened.status();
        }
        src_holder = std::move(*opened);
        src = src_holder.get();
      }
      auto info = src->Stat(leaf);
      if (!info.ok() || info->type != FileInfo::Type::kFile) continue;
      MS_ASSIGN_OR_RETURN(Dir * d, dir_of(parent));
      unsynced.insert(parent);
      Status s = src->Link(leaf, *d, leaf);
      if (!s.ok()) {
        long e = s.detail();
        if (e != EXDEV && e != EPERM && e != EMLINK) return s;
        MS_RETURN_IF_ERROR(storage::CopyFile(*src, leaf, *d, leaf, info->mode & 0777));
      }
    }
  }

  // Make the staging tree durable, deepest directories first (each reopened on its own),
  // then its entry in org. Only what changed since the tree was last synced whole.
  chain.clear();
  std::vector<std::string> to_sync(unsynced.begin(), unsynced.end());
  std::stable_sort(to_sync.begin(), to_sync.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
  });
  for (const auto& rel : to_sync) {
    if (rel.empty()) continue;
    MS_ASSIGN_OR_RETURN(auto d, storage::OpenDirPath(*top, rel, false));
    MS_RETURN_IF_ERROR(d->Sync());
  }
  if (unsynced.count("")) MS_RETURN_IF_ERROR(top->Sync());
  top.reset();
  MS_RETURN_IF_ERROR(org->Sync());

  // The swap.
  if (org->Stat(name).ok()) {
    Status s = org->Exchange(staging, *org, name);
    if (!s.ok() && s.detail() == EINVAL) {  // no atomic exchange here (posix, some FUSE, NFS)
      if (before_unsafe_swap_) MS_RETURN_IF_ERROR(before_unsafe_swap_());
      const std::string old = OldName(repo);
      MS_RETURN_IF_ERROR(org->Rename(name, *org, old));
      MS_RETURN_IF_ERROR(org->Rename(staging, *org, name));
      MS_RETURN_IF_ERROR(org->Sync());
      MS_RETURN_IF_ERROR(org->RemoveTree(old));
    } else {
      MS_RETURN_IF_ERROR(s);
      MS_RETURN_IF_ERROR(org->Sync());
      MS_RETURN_IF_ERROR(org->RemoveTree(staging));  // the old revision
    }
  } else {
    MS_RETURN_IF_ERROR(org->Rename(staging, *org, name));
  }
  MS_RETURN_IF_ERROR(org->Sync());
  if (stats) *stats = st;
  return Status::Ok();
}

Status Materializer::RemoveModel(const std::string& repo) {
  auto org = OpenOrg(repo, false);
  if (!org.ok()) return org.status().IsNotFound() ? Status::Ok() : org.status();
  MS_RETURN_IF_ERROR(CleanStaging(repo));
  const std::string name = RepoName(repo), staging = StagingName(repo);
  if (!(*org)->Stat(name).ok()) return Status::Ok();
  MS_RETURN_IF_ERROR((*org)->Rename(name, **org, staging));
  MS_RETURN_IF_ERROR((*org)->Sync());
  MS_RETURN_IF_ERROR((*org)->RemoveTree(staging));
  return (*org)->Sync();
}

Status Materializer::CheckMarkerSlot(const std::string& model_id) {
  MS_RETURN_IF_ERROR(ValidateModelId(model_id));
  auto st = root_.Stat(model_id);
  if (!st.ok()) return st.status().IsNotFound() ? Status::Ok() : st.status();
  if (st->type == FileInfo::Type::kFile && st->size == 0) return Status::Ok();
  std::string what = st->type == FileInfo::Type::kFile
                         ? "a file of " + std::to_string(st->size) + " bytes"
                     : st->type == FileInfo::Type::kDir ? std::string("a directory")
                                                        : std::string("not a regular file");
  return Status::InvalidArgument(root_.path() + "/" + model_id + " is " + what +
                                 ", not an empty marker: modelsync never overwrites it. Move it "
                                 "away, or choose another marker name with --id");
}

Status Materializer::WriteMarker(const std::string& model_id) {
  MS_RETURN_IF_ERROR(CheckMarkerSlot(model_id));
  {
    // kCreate, never kCreateTruncate: an existing file was just seen to be empty, and one that
    // appeared since is not truncated.
    MS_ASSIGN_OR_RETURN(auto f, root_.OpenFile(model_id, storage::OpenMode::kCreate, 0644));
    MS_ASSIGN_OR_RETURN(auto info, f->Stat());
    if (info.size != 0) return CheckMarkerSlot(model_id);
    MS_RETURN_IF_ERROR(f->Sync());
  }
  return root_.Sync();
}

Status Materializer::RemoveMarker(const std::string& model_id) {
  MS_RETURN_IF_ERROR(ValidateModelId(model_id));
  auto st = root_.Stat(model_id);
  if (!st.ok()) return st.status().IsNotFound() ? Status::Ok() : st.status();
  // Only an empty regular file is a marker; anything else there is the user's.
  if (st->type != FileInfo::Type::kFile || st->size != 0) return Status::Ok();
  MS_RETURN_IF_ERROR(root_.Unlink(model_id));
  return root_.Sync();
}

bool Materializer::HasMarker(const std::string& model_id) {
  if (!ValidateModelId(model_id).ok()) return false;
  auto st = root_.Stat(model_id);
  return st.ok() && st->type == FileInfo::Type::kFile;
}

}  // namespace modelsync::engine
