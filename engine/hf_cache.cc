#include "engine/hf_cache.h"

#include <cerrno>
#include <map>
#include <set>

#include "base/strings.h"
#include "engine/event_builders.h"
#include "engine/file_hash.h"
#include "engine/journal.h"
#include "engine/recovery_util.h"
#include "engine/repo_path.h"
#include "engine/repo_ref.h"
#include "engine/root_path.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

using storage::Dir;
using storage::FileInfo;

constexpr char kImportTemp[] = "hf-import.tmp";  // in blobs/; a leftover is removed by gc

bool IsHex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The directory holding base/rel's last component (base itself for a bare name).
Result<std::unique_ptr<Dir>> ParentOf(Dir& base, const std::string& rel, bool create) {
  auto [dir, leaf] = SplitLeaf(rel);
  (void)leaf;
  if (dir.empty()) return Status::InvalidArgument(rel + " has no parent directory here");
  return storage::OpenDirPath(base, dir, create);
}

// "a/b" + "../../c" relative to a/b's directory, lexically; "" when it leaves the top.
std::string JoinRelative(const std::string& from_file, const std::string& target) {
  std::vector<std::string> parts;
  auto [dir, leaf] = SplitLeaf(from_file);
  (void)leaf;
  auto push = [&](const std::string& path) {
    size_t i = 0;
    while (i <= path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      std::string c = path.substr(i, j - i);
      if (c == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
      } else if (!c.empty() && c != ".") {
        parts.push_back(c);
      }
      i = j + 1;
    }
    return true;
  };
  if (!push(dir) || !push(target) || parts.empty()) return "";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// Places a copy of from/name (hard link, else reflink, else a copy) at to/to_name, which must
// not exist. *copied tells whether bytes were copied.
Status LinkOrCopy(Dir& from, const std::string& name, Dir& to, const std::string& to_name,
                  uint32_t perm, bool* copied) {
  *copied = false;
  Status s = from.Link(name, to, to_name);
  if (s.ok()) return s;
  int e = s.detail();
  if (e != EXDEV && e != EPERM && e != EMLINK) return s;
  if (from.Clone(name, to, to_name, perm).ok()) return Status::Ok();
  *copied = true;
  return storage::CopyFile(from, name, to, to_name, perm);
}

std::string SnapshotLinkTarget(const std::string& path, const std::string& id) {
  std::string up = "../../";
  for (char c : path)
    if (c == '/') up += "../";
  return up + "blobs/" + id;
}

// Writes dir/name = data through a temporary file renamed into place.
Status WriteSmallFile(Dir& dir, const std::string& name, const std::string& data) {
  const std::string tmp = "." + name + ".modelsync-tmp";
  (void)dir.Unlink(tmp);
  MS_ASSIGN_OR_RETURN(auto f, dir.OpenFile(tmp, storage::OpenMode::kCreateTruncate, 0644));
  MS_RETURN_IF_ERROR(f->PWrite(0, data));
  MS_RETURN_IF_ERROR(f->DataSync());
  f.reset();
  MS_RETURN_IF_ERROR(dir.Rename(tmp, dir, name));
  return dir.Sync();
}

// dir/leaf becomes a symlink to target (already right: left alone; a regular file: a copy
// huggingface_hub made where symlinks fail, left alone).
Status PlaceLink(Dir& dir, const std::string& leaf, const std::string& target) {
  auto info = dir.Stat(leaf);
  if (info.ok() && info->type == FileInfo::Type::kFile) return Status::Ok();
  if (info.ok() && info->type == FileInfo::Type::kSymlink) {
    auto now = dir.ReadLink(leaf);
    if (now.ok() && *now == target) return Status::Ok();
  }
  const std::string tmp = "." + leaf + ".modelsync-tmp";
  (void)dir.Unlink(tmp);
  MS_RETURN_IF_ERROR(dir.Symlink(target, tmp));
  return dir.Rename(tmp, dir, leaf);
}

Status ExportBlob(storage::BlobStore& store, Dir& hf_blobs, const std::string& id, uint64_t size,
                  HfExport* out) {
  auto info = hf_blobs.Stat(id);
  if (info.ok() && ((info->type == FileInfo::Type::kFile && info->size == size) ||
                    info->type == FileInfo::Type::kSymlink)) {  // huggingface_hub's shared store
    ++out->kept;
    return Status::Ok();
  }
  const std::string tmp = "." + id + ".modelsync-tmp";
  (void)hf_blobs.Unlink(tmp);
  bool copied = false;
  MS_RETURN_IF_ERROR(LinkOrCopy(store.dir(), id, hf_blobs, tmp, 0444, &copied));
  MS_RETURN_IF_ERROR(hf_blobs.Rename(tmp, hf_blobs, id));
  if (copied) {
    ++out->copied;
    out->bytes_copied += size;
  } else {
    ++out->linked;
  }
  return Status::Ok();
}

}  // namespace

std::string HfCacheRepoFolder(const std::string& repo) {
  std::string out = "models--";
  for (char c : repo) {
    if (c == '/') out += "--";
    else out += c;
  }
  return out;
}

Result<HfExport> ExportToHfCache(const Env& env, const std::string& root_arg,
                                 const std::string& repo, const std::string& cache) {
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  if (cache.empty())
    return Status::InvalidArgument("no Hugging Face cache directory (give --hf-cache DIR, or set "
                                   "HF_HUB_CACHE or HF_HOME)");
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, root_arg, false));
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, true));
  const State& st = journal->state();
  auto it = st.repos.find(repo);
  if (it == st.repos.end() || it->second.active_commit.empty())
    return Status::NotFound(repo + " has no revision in root " + root +
                            ": pull it first (modelsync pull " + repo + ")");
  const RepoState& rs = it->second;
  if (rs.active_ref == "local")
    return Status::InvalidArgument(repo + " was added with add-local: it has no hub commit to "
                                   "file it under in the Hugging Face cache");
  MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, false));
  MS_ASSIGN_OR_RETURN(auto store, storage::BlobStore::Open(*root_dir, false));
  std::map<std::string, uint64_t> sizes;  // id -> size; each must be a verified blob here
  for (const auto& [path, id] : rs.materialized) {
    auto b = st.blobs.find(id);
    if (b == st.blobs.end() || !store->Has(id))
      return Status::Permanent(repo + "@" + rs.active_commit + " is not complete in root " +
                               root + " (" + path + " has no verified blob): run modelsync "
                               "pull " + repo + " (or verify --repair) first");
    sizes[id] = b->second;
  }
  if (rs.materialized.empty())
    return Status::Permanent(repo + " has no files in root " + root + ": nothing to export");

  HfExport out;
  out.cache = cache;
  out.repo = repo;
  out.commit = rs.active_commit;
  out.ref = IsHex(rs.active_ref, 40) ? "" : rs.active_ref;
  const std::string folder = HfCacheRepoFolder(repo);
  auto cache_dir = env.fs->OpenRoot(cache, true);
  if (!cache_dir.ok())
    return Status::InvalidArgument("cannot use the Hugging Face cache " + cache + ": " +
                                   cache_dir.status().message());
  MS_ASSIGN_OR_RETURN(auto hf_blobs, storage::OpenDirPath(**cache_dir, folder + "/blobs", true));
  for (const auto& [id, size] : sizes) MS_RETURN_IF_ERROR(ExportBlob(*store, *hf_blobs, id, size, &out));
  MS_RETURN_IF_ERROR(hf_blobs->Sync());

  MS_ASSIGN_OR_RETURN(auto snaps, storage::OpenDirPath(**cache_dir, folder + "/snapshots", true));
  out.snapshot = cache + "/" + folder + "/snapshots/" + out.commit;
  std::unique_ptr<Dir> snap;
  const std::string tmp = ".modelsync-tmp-" + out.commit;
  if (!snaps->Stat(out.commit).ok()) {  // built aside, then renamed into place whole
    MS_RETURN_IF_ERROR(snaps->RemoveTree(tmp));
    MS_RETURN_IF_ERROR(snaps->MakeDir(tmp));
    MS_ASSIGN_OR_RETURN(snap, snaps->OpenDir(tmp));
    out.snapshot_created = true;
  } else {
    MS_ASSIGN_OR_RETURN(snap, snaps->OpenDir(out.commit));
  }
  for (const auto& [path, id] : rs.materialized) {
    auto [dir, leaf] = SplitLeaf(path);
    std::unique_ptr<Dir> sub;
    Dir* parent = snap.get();
    if (!dir.empty()) {
      MS_ASSIGN_OR_RETURN(sub, storage::OpenDirPath(*snap, dir, true));
      parent = sub.get();
    }
    MS_RETURN_IF_ERROR(PlaceLink(*parent, leaf, SnapshotLinkTarget(path, id)));
    if (sub) MS_RETURN_IF_ERROR(sub->Sync());
    ++out.files;
  }
  MS_RETURN_IF_ERROR(snap->Sync());
  if (out.snapshot_created) MS_RETURN_IF_ERROR(snaps->Rename(tmp, *snaps, out.commit));
  MS_RETURN_IF_ERROR(snaps->Sync());

  if (!out.ref.empty()) {  // last: a reader following the ref finds a whole snapshot
    MS_ASSIGN_OR_RETURN(auto refs, storage::OpenDirPath(**cache_dir, folder + "/refs", true));
    auto [dir, leaf] = SplitLeaf(out.ref);
    std::unique_ptr<Dir> sub;
    Dir* parent = refs.get();
    if (!dir.empty()) {
      MS_ASSIGN_OR_RETURN(sub, storage::OpenDirPath(*refs, dir, true));
      parent = sub.get();
    }
    MS_RETURN_IF_ERROR(WriteSmallFile(*parent, leaf, out.commit));
  }
  return out;
}

namespace {

struct Found {
  std::string rel;   // cache-relative path of the bytes (a regular file)
  std::string id;    // from the blob's name; "" for a snapshot file that is no link
  std::string shown; // the snapshot path, for messages
};

// Follows cache-relative `rel` through symlinks (at most 8, never out of the cache) to a
// regular file. *first_target: the name the first link points at (the blob's id).
Result<std::string> Follow(Dir& cache, std::string rel, std::string* first_target) {
  for (int hop = 0; hop < 9; ++hop) {
    MS_ASSIGN_OR_RETURN(FileInfo info, storage::StatPath(cache, rel));
    if (info.type == FileInfo::Type::kFile) return rel;
    if (info.type != FileInfo::Type::kSymlink)
      return Status::InvalidArgument(rel + " is not a file");
    MS_ASSIGN_OR_RETURN(auto parent, ParentOf(cache, rel, false));
    MS_ASSIGN_OR_RETURN(std::string target, parent->ReadLink(SplitLeaf(rel).second));
    if (!target.empty() && target[0] == '/')
      return Status::InvalidArgument(rel + " points outside the cache (" + target + ")");
    std::string next = JoinRelative(rel, target);
    if (next.empty()) return Status::InvalidArgument(rel + " points outside the cache (" + target + ")");
    if (hop == 0) *first_target = SplitLeaf(next).second;
    rel = next;
  }
  return Status::InvalidArgument(rel + ": too many levels of symbolic links");
}

Status Walk(Dir& cache, const std::string& rel, const std::string& shown,
            std::vector<Found>* out, std::vector<std::string>* damaged) {
  MS_ASSIGN_OR_RETURN(auto dir, storage::OpenDirPath(cache, rel, false));
  MS_ASSIGN_OR_RETURN(auto names, dir->List());
  for (const auto& n : names) {
    MS_ASSIGN_OR_RETURN(FileInfo info, dir->Stat(n));
    const std::string r = rel + "/" + n, s = shown.empty() ? n : shown + "/" + n;
    if (info.type == FileInfo::Type::kDir) {
      MS_RETURN_IF_ERROR(Walk(cache, r, s, out, damaged));
    } else if (info.type == FileInfo::Type::kFile) {
      out->push_back({r, "", s});
    } else if (info.type == FileInfo::Type::kSymlink) {
      std::string first;
      auto bytes = Follow(cache, r, &first);
      if (!bytes.ok()) {
        damaged->push_back(s + ": " + bytes.status().message());
        continue;
      }
      if (!IsHex(first, 64) && !IsHex(first, 40)) {
        damaged->push_back(s + ": its blob '" + first + "' is not named by a content id");
        continue;
      }
      out->push_back({*bytes, first, s});
    }
  }
  return Status::Ok();
}

}  // namespace

Result<HfImport> ImportFromHfCache(const Env& env, const std::string& root_arg,
                                   const std::string& cache,
                                   const std::vector<std::string>& repos) {
  if (cache.empty())
    return Status::InvalidArgument("no Hugging Face cache directory (give --hf-cache DIR, or set "
                                   "HF_HUB_CACHE or HF_HOME)");
  auto cache_open = env.fs->OpenRoot(cache, false);
  if (!cache_open.ok())
    return Status::InvalidArgument("no Hugging Face cache at " + cache + " (" +
                                   cache_open.status().message() + ")");
  Dir& hf = **cache_open;
  HfImport out;
  out.cache = cache;
  std::vector<std::pair<std::string, std::string>> todo;  // repo, folder
  if (repos.empty()) {
    MS_ASSIGN_OR_RETURN(auto names, hf.List());
    for (const auto& n : names) {
      if (n.rfind("models--", 0) != 0) continue;
      std::string rest = n.substr(8);
      size_t sep = rest.find("--");
      std::string repo = sep == std::string::npos ? "" : rest.substr(0, sep) + "/" + rest.substr(sep + 2);
      if (repo.empty() || !ValidateRepoId(repo).ok()) {
        out.skipped.push_back(n);
        continue;
      }
      todo.emplace_back(repo, n);
    }
  } else {
    for (const auto& r : repos) {
      MS_RETURN_IF_ERROR(ValidateRepoId(r));
      const std::string folder = HfCacheRepoFolder(r);
      if (!hf.Stat(folder).ok())
        return Status::InvalidArgument(r + " is not in the Hugging Face cache at " + cache +
                                       " (no " + folder + ")");
      todo.emplace_back(r, folder);
    }
  }

  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, root_arg, true));
  MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, true));
  MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, true));
  MS_ASSIGN_OR_RETURN(auto store, storage::BlobStore::Open(*root_dir));
  Dir& blobs = store->dir();

  // Brings cache/rel into blobs/ as kImportTemp, hashed there; adopted as id when it matches.
  auto adopt = [&](const Found& f, const std::string& id, HfImportRepo* rep,
                   std::vector<v1::Event>* events) -> Status {
    MS_ASSIGN_OR_RETURN(auto parent, ParentOf(hf, f.rel, false));
    (void)blobs.Unlink(kImportTemp);
    bool copied = false;
    MS_RETURN_IF_ERROR(LinkOrCopy(*parent, SplitLeaf(f.rel).second, blobs, kImportTemp, 0444, &copied));
    MS_ASSIGN_OR_RETURN(auto file, blobs.OpenFile(kImportTemp, storage::OpenMode::kRead));
    MS_ASSIGN_OR_RETURN(FileHashResult h, HashFile(*file, KindOfContentId(id)));
    file.reset();
    if (h.hex != id) {
      (void)blobs.Unlink(kImportTemp);
      rep->damaged.push_back(f.shown + ": its bytes hash to " + h.hex + ", not to its name " + id);
      return Status::Ok();
    }
    MS_RETURN_IF_ERROR(store->Adopt(blobs, kImportTemp, id));
    events->push_back(BlobVerifiedEvent(id, h.size));
    ++rep->adopted;
    rep->bytes_adopted += h.size;
    return Status::Ok();
  };

  for (const auto& [repo, folder] : todo) {
    HfImportRepo rep;
    rep.repo = repo;
    std::vector<Found> found;
    if (storage::StatPath(hf, folder + "/snapshots").ok()) {
      MS_ASSIGN_OR_RETURN(auto snaps, storage::OpenDirPath(hf, folder + "/snapshots", false));
      MS_ASSIGN_OR_RETURN(auto commits, snaps->List());
      for (const auto& c : commits) {
        if (c.empty() || c[0] == '.') continue;
        MS_ASSIGN_OR_RETURN(FileInfo ci, snaps->Stat(c));
        if (ci.type != FileInfo::Type::kDir) continue;
        rep.snapshots.push_back(c);
        MS_RETURN_IF_ERROR(Walk(hf, folder + "/snapshots/" + c, c, &found, &rep.damaged));
      }
    }
    rep.files = found.size();
    std::vector<v1::Event> events;
    std::set<std::string> done;
    for (const Found& f : found) {
      std::vector<std::string> ids;
      if (!f.id.empty()) {
        ids.push_back(f.id);
      } else {  // a plain copy: named by both the hashes the hub may know it by
        MS_ASSIGN_OR_RETURN(auto parent, ParentOf(hf, f.rel, false));
        MS_ASSIGN_OR_RETURN(auto file, parent->OpenFile(SplitLeaf(f.rel).second, storage::OpenMode::kRead));
        MS_ASSIGN_OR_RETURN(FileHashResult a, HashFile(*file, HashKind::kSha256));
        MS_ASSIGN_OR_RETURN(FileHashResult b, HashFile(*file, HashKind::kGitBlobSha1));
        ids = {a.hex, b.hex};
      }
      for (const auto& id : ids) {
        if (!done.insert(id).second) continue;
        if (journal->state().blobs.count(id) && store->Has(id)) {
          ++rep.already;
          continue;
        }
        MS_RETURN_IF_ERROR(adopt(f, id, &rep, &events));
      }
    }
    if (!events.empty()) MS_RETURN_IF_ERROR(journal->Append(std::move(events)).status());
    out.repos.push_back(std::move(rep));
  }
  return out;
}

}  // namespace modelsync::engine
