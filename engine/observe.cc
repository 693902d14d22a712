#include "engine/observe.h"

#include <map>
#include <thread>
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

// A model file's (dev, ino), matched to the blobs once they are known.
using FileIds = std::vector<std::pair<ObservedFile*, std::pair<uint64_t, uint64_t>>>;

Status Walk(Dir& dir, const std::string& prefix, bool clone_fs,
            std::map<std::string, ObservedFile>* out, FileIds* ids, int depth) {
  if (depth > 64) return Status::IOError(dir.path() + " is nested too deeply");
  MS_ASSIGN_OR_RETURN(auto names, dir.List());
  for (const auto& n : names) {
    MS_ASSIGN_OR_RETURN(FileInfo info, dir.Stat(n));
    std::string rel = prefix.empty() ? n : prefix + "/" + n;
    if (info.type == FileInfo::Type::kDir) {
      MS_ASSIGN_OR_RETURN(auto sub, dir.OpenDir(n));
      MS_RETURN_IF_ERROR(Walk(*sub, rel, clone_fs, out, ids, depth + 1));
      continue;
    }
    ObservedFile of;
    of.size = info.size;
    of.read_only = (info.mode & 0222) == 0;
    of.clone_fs = clone_fs;
    of.type = info.type == FileInfo::Type::kFile      ? ObservedFile::Type::kFile
              : info.type == FileInfo::Type::kSymlink ? ObservedFile::Type::kSymlink
                                                      : ObservedFile::Type::kOther;
    ObservedFile& placed = (*out)[rel] = std::move(of);
    ids->push_back({&placed, {info.dev, info.ino}});
  }
  return Status::Ok();
}

struct BlobsSeen {
  std::map<std::string, uint64_t> sizes;
  InodeMap inodes;
  uint64_t dev = 0;  // the blob store's file system (0: no blob seen)
};

Status SeeBlobs(Dir& root, BlobsSeen* out) {
  auto opened = storage::BlobStore::Open(root, /*create=*/false);
  if (!opened.ok()) return opened.status().IsNotFound() ? Status::Ok() : opened.status();
  auto& blobs = *opened;
  MS_ASSIGN_OR_RETURN(auto ids, blobs->List());
  for (const auto& id : ids) {
    MS_ASSIGN_OR_RETURN(FileInfo info, blobs->Stat(id));
    if (info.type != FileInfo::Type::kFile) continue;
    out->sizes[id] = info.size;
    out->inodes[{info.dev, info.ino}] = id;
    out->dev = info.dev;
  }
  return Status::Ok();
}

// The model directory's files (if there is one), their blob ids left for the caller.
Status SeeModel(Dir& root, const std::string& repo, Observation* obs, FileIds* ids) {
  auto org = OpenDirPath(root, ModelsOrgRel(repo), /*create=*/false);
  if (!org.ok()) return org.status().IsNotFound() ? Status::Ok() : org.status();
  for (const auto& leftover : {StagingName(repo), OldName(repo)})
    if ((*org)->Stat(leftover).ok()) obs->staging_exists = true;
  auto model = (*org)->OpenDir(RepoName(repo));
  if (!model.ok()) return model.status().IsNotFound() ? Status::Ok() : model.status();
  obs->model_dir_exists = true;
  return Walk(**model, "", (*model)->ClonesFiles(), &obs->model_files, ids, 0);
}

}  // namespace

Result<Observation> Observe(Dir& root, const std::string& repo,
                            const std::vector<std::string>& marker_names) {
  MS_RETURN_IF_ERROR(ValidateRepoId(repo));
  Observation obs;
  // The blob store and the model directory cost a stat per file each: looked at on two
  // threads at once (a second round of a pull of 600 small files: ~4 -> ~2 ms).
  BlobsSeen seen;
  Status blobs_status;
  FileIds ids;
  Status model_status;
  {
    std::jthread blobs_thread([&] { blobs_status = SeeBlobs(root, &seen); });
    model_status = SeeModel(root, repo, &obs, &ids);
  }
  MS_RETURN_IF_ERROR(blobs_status);
  MS_RETURN_IF_ERROR(model_status);
  obs.blobs = std::move(seen.sizes);
  for (auto& [of, dev_ino] : ids) {
    of->other_device = seen.dev != 0 && dev_ino.first != seen.dev;
    if (of->type != ObservedFile::Type::kFile) continue;
    if (auto it = seen.inodes.find(dev_ino); it != seen.inodes.end()) of->blob_id = it->second;
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
  return obs;
}

}  // namespace modelsync::engine
