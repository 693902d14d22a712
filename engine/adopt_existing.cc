#include "engine/adopt_existing.h"

#include <memory>

#include "base/hash.h"
#include "base/strings.h"
#include "engine/event_builders.h"
#include "engine/file_hash.h"
#include "engine/layout.h"

namespace modelsync::engine {
namespace {

using storage::Dir;
using storage::FileInfo;

// The digest of dir/name, or "" when its size is not `size` (then it cannot match).
Result<std::string> HashOf(Dir& dir, const std::string& name, HashKind kind, uint64_t size) {
  MS_ASSIGN_OR_RETURN(auto f, dir.OpenFile(name, storage::OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(FileHashResult h, HashFile(*f, kind));
  if (h.size != size) return std::string();
  return h.hex;
}

// Moves models/<repo>/<path> to .modelsync/kept/<repo>/<path>[.N]; returns the new place.
Result<std::string> MoveAside(Dir& root, Dir& parent, const std::string& repo,
                              const std::string& path) {
  auto [dir, leaf] = SplitLeaf(path);
  std::string rel = ".modelsync/kept/" + repo + (dir.empty() ? "" : "/" + dir);
  MS_ASSIGN_OR_RETURN(auto kept, storage::OpenDirPath(root, rel, true));
  std::string name = leaf;
  for (int n = 1; kept->Stat(name).ok(); ++n) name = leaf + "." + std::to_string(n);
  MS_RETURN_IF_ERROR(parent.Rename(leaf, *kept, name));
  MS_RETURN_IF_ERROR(kept->Sync());
  MS_RETURN_IF_ERROR(parent.Sync());
  return rel + "/" + name;
}

}  // namespace

Result<AdoptResult> AdoptExisting(Dir& root, storage::BlobStore& blobs, Journal& journal,
                                  const std::string& repo,
                                  const std::vector<modelsync::v1::FileEntry>& files,
                                  const Observation& obs) {
  AdoptResult out;
  if (!obs.model_dir_exists) return out;
  static const RepoState kNone;
  auto rit = journal.state().repos.find(repo);
  const RepoState& rs = rit == journal.state().repos.end() ? kNone : rit->second;
  std::unique_ptr<Dir> model;
  for (const auto& f : files) {
    auto m = obs.model_files.find(f.path());
    if (m == obs.model_files.end() || m->second.type != ObservedFile::Type::kFile ||
        !m->second.blob_id.empty())
      continue;
    const std::string cid = ContentIdOf(f);
    auto b = obs.blobs.find(cid);
    bool have_blob = b != obs.blobs.end() && b->second == f.size();
    bool ours = rs.materialized.count(f.path()) > 0;
    if (have_blob && ours) continue;  // our own copy: the materializer relinks it
    if (!model) {
      MS_ASSIGN_OR_RETURN(model, storage::OpenDirPath(root, "models/" + repo, false));
    }
    auto [dir, leaf] = SplitLeaf(f.path());
    std::unique_ptr<Dir> sub;
    Dir* parent = model.get();
    if (!dir.empty()) {
      MS_ASSIGN_OR_RETURN(sub, storage::OpenDirPath(*model, dir, false));
      parent = sub.get();
    }
    MS_ASSIGN_OR_RETURN(FileInfo info, parent->Stat(leaf));
    if (info.type != FileInfo::Type::kFile) continue;
    bool match = false;
    if (info.size == f.size()) {
      const HashKind kind = cid.size() == 64 ? HashKind::kSha256 : HashKind::kGitBlobSha1;
      if (have_blob) {
        MS_ASSIGN_OR_RETURN(std::string hex, HashOf(*parent, leaf, kind, f.size()));
        match = hex == cid;
      } else {
        // Link first, then hash the linked inode read-only: what is adopted is what was hashed.
        const std::string tmp = ".adopt-" + cid;
        if (blobs.dir().Stat(tmp).ok()) MS_RETURN_IF_ERROR(blobs.dir().Unlink(tmp));
        Status l = parent->Link(leaf, blobs.dir(), tmp);
        if (!l.ok()) {
          long e = l.detail();
          if (e != EXDEV && e != EPERM && e != EMLINK) return l;
          MS_RETURN_IF_ERROR(storage::CopyFile(*parent, leaf, blobs.dir(), tmp, 0444));
        }
        {
          MS_ASSIGN_OR_RETURN(auto tf, blobs.dir().OpenFile(tmp, storage::OpenMode::kRead));
          MS_RETURN_IF_ERROR(tf->Chmod(0444));
        }
        MS_ASSIGN_OR_RETURN(std::string hex, HashOf(blobs.dir(), tmp, kind, f.size()));
        match = hex == cid;
        if (match) {
          MS_RETURN_IF_ERROR(blobs.Adopt(blobs.dir(), tmp, cid));
          MS_RETURN_IF_ERROR(journal.Append({BlobVerifiedEvent(cid, f.size())}).status());
          ++out.files;
          out.bytes += f.size();
        } else {
          MS_RETURN_IF_ERROR(blobs.dir().Unlink(tmp));
          MS_RETURN_IF_ERROR(blobs.dir().Sync());
        }
      }
    }
    if (match || ours) continue;
    MS_ASSIGN_OR_RETURN(std::string where, MoveAside(root, *parent, repo, f.path()));
    v1::Event e;
    auto* fk = e.mutable_file_kept();
    fk->set_repo(repo);
    fk->set_path(f.path());
    fk->set_kept_as(where);
    MS_RETURN_IF_ERROR(journal.Append({std::move(e)}).status());
    out.kept.push_back({f.path(), where});
  }
  return out;
}

}  // namespace modelsync::engine
