#include "storage/partial_file.h"

#include <cerrno>
#include <charconv>

#include "base/platform.h"

namespace modelsync::storage {

PartialFile::PartialFile(uint64_t id, uint64_t size, std::unique_ptr<File> file,
                         std::unique_ptr<File> direct)
    : id_(id), size_(size), file_(std::move(file)), direct_(std::move(direct)) {}

Status PartialFile::Write(uint64_t offset, std::string_view data) {
  if (offset > size_ || data.size() > size_ - offset)
    return Status::InvalidArgument("write of " + std::to_string(data.size()) + " bytes at " +
                                   std::to_string(offset) + " passes the end of " + path() + " (" +
                                   std::to_string(size_) + " bytes)");
  {
    std::lock_guard l(mu_);
    if (!poison_.empty()) return Status::IOError(path() + " is unusable after: " + poison_);
  }
  MS_RETURN_IF_ERROR(file_->PWrite(offset, data));
  std::lock_guard l(mu_);
  dirty_.Add(ByteRange{offset, offset + data.size()});
  return Status::Ok();
}

Status PartialFile::WriteDirect(uint64_t offset, std::string_view data) {
  if (!direct_) return Write(offset, data);
  constexpr uint64_t kAlign = platform::kDirectAlign;
  if (offset > size_ || data.size() > size_ - offset)
    return Write(offset, data);  // the same refusal, worded once
  const uint64_t end = offset + data.size();
  const uint64_t aligned = end == size_ ? data.size() / kAlign * kAlign : data.size();
  if (offset % kAlign != 0 || aligned % kAlign != 0 ||
      reinterpret_cast<uintptr_t>(data.data()) % kAlign != 0)
    return Status::InvalidArgument("direct write of " + std::to_string(data.size()) +
                                   " bytes at " + std::to_string(offset) + " to " + path() +
                                   " is not aligned to " + std::to_string(kAlign));
  {
    std::lock_guard l(mu_);
    if (!poison_.empty()) return Status::IOError(path() + " is unusable after: " + poison_);
  }
  if (aligned > 0) {
    Status st = direct_->PWrite(offset, data.substr(0, aligned));
    // A file system that opens with O_DIRECT but refuses the write itself (an alignment it
    // does not take) gets it as an ordinary write.
    if (!st.ok() && st.detail() == EINVAL) st = file_->PWrite(offset, data.substr(0, aligned));
    MS_RETURN_IF_ERROR(st);
  }
  if (aligned < data.size()) MS_RETURN_IF_ERROR(file_->PWrite(offset + aligned, data.substr(aligned)));
  std::lock_guard l(mu_);
  dirty_.Add(ByteRange{offset, end});
  return Status::Ok();
}

Status PartialFile::Sync(RangeSet* durable) {
  RangeSet pending;
  {
    std::lock_guard l(mu_);
    if (!poison_.empty()) return Status::IOError(path() + " is unusable after: " + poison_);
    pending = std::move(dirty_);
    dirty_.Clear();
  }
  Status s = file_->DataSync();
  if (!s.ok()) {
    std::lock_guard l(mu_);
    poison_ = s.message();
    return s.With("the bytes written since the last sync are lost");
  }
  if (durable) *durable = std::move(pending);
  return Status::Ok();
}

Status PartialFile::Read(uint64_t offset, size_t n, std::string* out) {
  out->resize(n);
  return WholeRead(offset, n, file_->PRead(offset, out->data(), n));
}

Status PartialFile::WholeRead(uint64_t offset, size_t n, const Result<size_t>& got) const {
  MS_RETURN_IF_ERROR(got.status());
  if (*got < n)
    return Status::Corruption(path() + " is shorter than expected: wanted " + std::to_string(n) +
                              " bytes at " + std::to_string(offset) + ", got " +
                              std::to_string(*got));
  return Status::Ok();
}

Status PartialFile::ReadInto(uint64_t offset, size_t n, char* buf) {
  constexpr uint64_t kAlign = platform::kDirectAlign;
  Result<size_t> got = size_t{0};
  if (direct_ && offset % kAlign == 0 && reinterpret_cast<uintptr_t>(buf) % kAlign == 0) {
    // A direct read's length is a multiple of the alignment too: past the end of the file it
    // reads what there is.
    got = direct_->PRead(offset, buf, (n + kAlign - 1) / kAlign * kAlign);
    // A file system that opens with O_DIRECT but refuses the read itself: an ordinary one.
    if (!got.ok() && got.status().detail() == EINVAL) got = file_->PRead(offset, buf, n);
  } else {
    got = file_->PRead(offset, buf, n);
  }
  return WholeRead(offset, n, got);
}

bool PartialFile::poisoned() const {
  std::lock_guard l(mu_);
  return !poison_.empty();
}

RangeSet PartialFile::Dirty() const {
  std::lock_guard l(mu_);
  return dirty_;
}

Result<std::unique_ptr<PartialStore>> PartialStore::Open(Dir& root, bool create) {
  MS_ASSIGN_OR_RETURN(auto dir, OpenDirPath(root, ".modelsync/partial", create));
  return std::unique_ptr<PartialStore>(new PartialStore(std::move(dir)));
}

std::string PartialStore::NameOf(uint64_t transfer_id) { return std::to_string(transfer_id); }

Result<std::unique_ptr<PartialFile>> PartialStore::Create(uint64_t transfer_id, uint64_t size) {
  std::string name = NameOf(transfer_id);
  MS_ASSIGN_OR_RETURN(auto f, dir_->OpenFile(name, OpenMode::kCreateTruncate, 0644));
  MS_RETURN_IF_ERROR(f->Allocate(size));
  MS_RETURN_IF_ERROR(f->Sync());
  MS_RETURN_IF_ERROR(dir_->Sync());
  return std::make_unique<PartialFile>(transfer_id, size, std::move(f), OpenDirect(name));
}

Result<std::unique_ptr<PartialFile>> PartialStore::OpenExisting(uint64_t transfer_id,
                                                                uint64_t size) {
  MS_ASSIGN_OR_RETURN(auto f, dir_->OpenFile(NameOf(transfer_id), OpenMode::kWrite));
  MS_ASSIGN_OR_RETURN(FileInfo info, f->Stat());
  if (info.size != size)
    return Status::Corruption(f->path() + " holds " + std::to_string(info.size) +
                              " bytes, expected " + std::to_string(size) +
                              "; the transfer must start again");
  return std::make_unique<PartialFile>(transfer_id, size, std::move(f),
                                       OpenDirect(NameOf(transfer_id)));
}

std::unique_ptr<File> PartialStore::OpenDirect(const std::string& name) {
  auto f = dir_->OpenFile(name, OpenMode::kWrite);
  if (!f.ok() || !(*f)->SetDirectIO(true).ok()) return nullptr;  // ordinary writes then
  return std::move(*f);
}

Status PartialStore::Remove(uint64_t transfer_id) {
  MS_RETURN_IF_ERROR(dir_->RemoveTree(NameOf(transfer_id)));
  return dir_->Sync();
}

Result<std::map<uint64_t, uint64_t>> PartialStore::List() {
  MS_ASSIGN_OR_RETURN(auto names, dir_->List());
  std::map<uint64_t, uint64_t> out;
  for (const auto& n : names) {
    uint64_t id = 0;
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), id);
    if (ec != std::errc() || p != n.data() + n.size() || NameOf(id) != n) continue;
    auto info = dir_->Stat(n);
    if (!info.ok() || info->type != FileInfo::Type::kFile) continue;
    out[id] = info->size;
  }
  return out;
}

}  // namespace modelsync::storage
