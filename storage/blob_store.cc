#include "storage/blob_store.h"

#include <cerrno>

#include "base/hash.h"

namespace modelsync::storage {

Result<std::unique_ptr<BlobStore>> BlobStore::Open(Dir& root, bool create) {
  MS_ASSIGN_OR_RETURN(auto dir, OpenDirPath(root, ".modelsync/blobs", create));
  return std::unique_ptr<BlobStore>(new BlobStore(std::move(dir)));
}

bool BlobStore::IsValidId(std::string_view id) { return IsHex(id, 40) || IsHex(id, 64); }

Status BlobStore::CheckId(std::string_view id) const {
  if (IsValidId(id)) return Status::Ok();
  std::string shown(id.substr(0, 80));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return Status::InvalidArgument("'" + shown +
                                 "' is not a content id (expected 40 or 64 lowercase hex)");
}

bool BlobStore::Has(std::string_view id) {
  if (!IsValidId(id)) return false;
  auto st = dir_->Stat(id);
  return st.ok() && st->type == FileInfo::Type::kFile;
}

std::string BlobStore::PathOf(std::string_view id) const {
  return dir_->path() + "/" + std::string(id);
}

Result<FileInfo> BlobStore::Stat(std::string_view id) {
  MS_RETURN_IF_ERROR(CheckId(id));
  return dir_->Stat(id);
}

Result<uint64_t> BlobStore::Size(std::string_view id) {
  MS_ASSIGN_OR_RETURN(FileInfo info, Stat(id));
  if (info.type != FileInfo::Type::kFile)
    return Status::Corruption(PathOf(id) + " is not a regular file; remove it and run again");
  return info.size;
}

Status BlobStore::Adopt(Dir& from, std::string_view name, std::string_view id) {
  MS_RETURN_IF_ERROR(CheckId(id));
  {
    MS_ASSIGN_OR_RETURN(auto f, from.OpenFile(name, OpenMode::kRead));
    MS_RETURN_IF_ERROR(f->Chmod(0444));
    MS_RETURN_IF_ERROR(f->Sync());
  }
  if (Has(id)) {
    // Same id = same bytes: keep the blob that is already there (and possibly linked).
    MS_RETURN_IF_ERROR(from.Unlink(name));
    return from.Sync();
  }
  MS_RETURN_IF_ERROR(from.Rename(name, *dir_, id));
  MS_RETURN_IF_ERROR(dir_->Sync());
  return from.Sync();
}

Status BlobStore::SyncBatch(Dir& from,
                            const std::vector<std::pair<std::string, std::string>>& name_ids,
                            bool* per_file) {
  *per_file = false;
  Status s = from.SyncFileSystem();
  if (s.code() != StatusCode::kInvalidArgument) return s;
  *per_file = true;
  for (const auto& [name, id] : name_ids) {
    MS_ASSIGN_OR_RETURN(auto f, from.OpenFile(name, OpenMode::kRead));
    MS_RETURN_IF_ERROR(f->Sync());
  }
  return Status::Ok();
}

Status BlobStore::AdoptSynced(Dir& from,
                              const std::vector<std::pair<std::string, std::string>>& name_ids) {
  for (const auto& [name, id] : name_ids) {
    MS_RETURN_IF_ERROR(CheckId(id));
    if (Has(id)) {
      MS_RETURN_IF_ERROR(from.Unlink(name));
    } else {
      MS_RETURN_IF_ERROR(from.Rename(name, *dir_, id));
    }
  }
  return Status::Ok();
}

Result<BlobStore::LinkedAs> BlobStore::LinkIn(Dir& from, std::string_view name,
                                              std::string_view id) {
  MS_RETURN_IF_ERROR(CheckId(id));
  Status s = from.Link(name, *dir_, id);
  if (s.ok()) return LinkedAs::kLink;
  const long e = s.detail();
  if (e == EEXIST) return LinkedAs::kExisted;
  if (e != EXDEV && e != EPERM && e != EMLINK) return s;
  const std::string tmp = ".tmp-" + std::string(id) + ".copy";
  (void)dir_->Unlink(tmp);  // a crashed run's
  MS_RETURN_IF_ERROR(CopyFile(from, name, *dir_, tmp, 0444));
  MS_RETURN_IF_ERROR(dir_->Rename(tmp, *dir_, id));
  return LinkedAs::kCopy;
}

Status BlobStore::Remove(std::string_view id) {
  MS_RETURN_IF_ERROR(CheckId(id));
  MS_RETURN_IF_ERROR(dir_->RemoveTree(id));
  return dir_->Sync();
}

Result<std::vector<std::pair<std::string, uint64_t>>> BlobStore::ListLeftovers() {
  MS_ASSIGN_OR_RETURN(auto names, dir_->List());
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto& n : names) {
    if (IsValidId(n)) continue;
    auto info = dir_->Stat(n);
    uint64_t size = info.ok() && info->type == FileInfo::Type::kFile ? info->size : 0;
    out.emplace_back(std::move(n), size);
  }
  return out;
}

Status BlobStore::RemoveLeftover(std::string_view name) {
  if (IsValidId(name))
    return Status::InvalidArgument("blobs/" + std::string(name) + " is a blob, not a leftover");
  MS_RETURN_IF_ERROR(dir_->RemoveTree(name));
  return dir_->Sync();
}

Result<std::vector<std::string>> BlobStore::List() {
  MS_ASSIGN_OR_RETURN(auto names, dir_->List());
  std::vector<std::string> out;
  for (auto& n : names)
    if (IsValidId(n)) out.push_back(std::move(n));
  return out;
}

}  // namespace modelsync::storage
