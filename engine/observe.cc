#include "engine/observe.h"

#include <map>
#include <utility>

#include "engine/layout.h"
#include "engine/repo_path.h"
#include "storage/blob_store.h"
#include "storage/partial_file.h"

namespace modelsync::engine {
namespace {

using storage::Dir;
using storage::FileInfo;

using InodeMap = std::map<std::pair<uint64_t, uint64_t>, std::string>;

Status Walk(Dir& dir, const std::string& prefix, const InodeMap& inodes, uint64_t blobs_dev,
            bool clone_fs, std::map<std::string, ObservedFile>* out, int depth) {
  if (depth > 64) return Status::IOError(dir.path() + " is nested too deeply");
  MS_ASSIGN_OR_RETURN(auto names, dir.List());
  for (const auto& n : names) {
    MS_ASSIGN_OR_RETURN(FileInfo info, dir.Stat(n));
    std::string rel = prefix.empty() ? n : prefix + "/" + n;
    if (info.type == FileInfo::Type::kDir) {
      MS_ASSIGN_OR_RETURN(auto sub, dir.OpenDir(n));
      MS_RETURN_IF_ERROR(Walk(*sub, rel, inodes, blobs_dev, clone_fs, out, depth + 1));
      continue;
    }
    ObservedFile of;
    of.size = info.size;
    of.read_only = (info.mode & 0222) == 0;
    of.other_device = blobs_dev != 0 && info.dev != blobs_dev;
    of.clone_fs = clone_fs;
    of.type = info.type == FileInfo::Type::kFile      ? ObservedFile::Type::kFile
              : info.type == FileInfo::Type::kSymlink ? ObservedFile::Type::kSymlink
                                                      : ObservedFile::Type::kOther;
    if (of.type == ObservedFile::Type::kFile)
      if (auto it = inodes.find({info.dev, info.ino}); it != inodes.end()) of.blob_id = it->second;
    (*out)[rel] = std::move(of);
  }
  return Status::Ok();
}

}  // namespace

Result<Observation> Observe(Dir& root, const std::string& repo,
                            const std::vector<std::string>& marker_names) {
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  Observation obs;
  InodeMap inodes;
  uint64_t blobs_dev = 0;  // the blob store's file system (0: no blob seen)
  if (auto opened = storage::BlobStore::Open(root, /*create=*/false); opened.ok()) {
    auto& blobs = *opened;
    MS_ASSIGN_OR_RETURN(auto ids, blobs->List());
    for (const auto& id : ids) {
      MS_ASSIGN_OR_RETURN(FileInfo info, blobs->Stat(id));
      if (info.type != FileInfo::Type::kFile) continue;
      obs.blobs[id] = info.size;
      inodes[{info.dev, info.ino}] = id;
      blobs_dev = info.dev;
    }
  } else if (!opened.status().IsNotFound()) {
    return opened.status();
  }
  if (auto partials = storage::PartialStore::Open(root, /*create=*/false); partials.ok()) {
    MS_ASSIGN_OR_RETURN(obs.partials, (*partials)->List());
  } else if (!partials.status().IsNotFound()) {
    return partials.status();
  }
  for (const auto& m : marker_names) {
    if (!ValidateModelId(m).ok()) continue;
    auto st = root.Stat(m);
    if (st.ok() && st->type == FileInfo::Type::kFile) obs.markers.insert(m);
  }
  auto org = OpenDirPath(root, ModelsOrgRel(repo), /*create=*/false);
  if (!org.ok()) {
    if (org.status().IsNotFound()) return obs;
    return org.status();
  }
  for (const auto& leftover : {StagingName(repo), OldName(repo)})
    if ((*org)->Stat(leftover).ok()) obs.staging_exists = true;
  auto model = (*org)->OpenDir(RepoName(repo));
  if (!model.ok()) {
    if (model.status().IsNotFound()) return obs;
    return model.status();
  }
  obs.model_dir_exists = true;
  MS_RETURN_IF_ERROR(
      Walk(**model, "", inodes, blobs_dev, (*model)->ClonesFiles(), &obs.model_files, 0));
  return obs;
}

}  // namespace modelsync::engine
