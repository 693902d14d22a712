// FaultFileSystem's power-loss model: tracking what is unsynced, and DropUnsynced().
#include <algorithm>
#include <cerrno>
#include <string_view>

#include "storage/fault_file_system.h"

namespace modelsync::storage {
namespace {

void SplitP(const std::string& path, std::string* dir, std::string* name) {
  size_t s = path.rfind('/');
  if (s == std::string::npos) {
    *dir = ".";
    *name = path;
  } else {
    *dir = s == 0 ? "/" : path.substr(0, s);
    *name = path.substr(s + 1);
  }
}

// a minus b.
RangeSet Minus(const RangeSet& a, const RangeSet& b) {
  RangeSet out;
  for (ByteRange r : a.ranges()) {
    uint64_t at = r.begin;
    for (ByteRange c : b.ranges()) {
      if (c.end <= at || c.begin >= r.end) continue;
      if (c.begin > at) out.Add(ByteRange{at, c.begin});
      at = std::max(at, c.end);
      if (at >= r.end) break;
    }
    if (at < r.end) out.Add(ByteRange{at, r.end});
  }
  return out;
}

}  // namespace

void FaultFileSystem::NoteFileOpened(const std::string& path, uint64_t size_now, bool created) {
  std::lock_guard l(mu_);
  auto it = files_.find(path);
  if (it != files_.end() && !created) return;  // keep what we know
  Track t;
  t.synced_size = created ? 0 : size_now;
  files_[path] = t;
}
void FaultFileSystem::NoteWrite(const std::string& path, ByteRange r) {
  std::lock_guard l(mu_);
  files_[path].unsynced.Add(r);
}
void FaultFileSystem::NoteResize(const std::string& path, uint64_t old_size, uint64_t new_size) {
  std::lock_guard l(mu_);
  Track& t = files_[path];
  if (new_size > old_size) t.unsynced.Add(ByteRange{old_size, new_size});
  if (new_size < old_size) t.unsynced.Add(ByteRange{new_size, old_size});
}

void FaultFileSystem::NoteFileSynced(const std::string& path, uint64_t size,
                                     const RangeSet* covered) {
  std::lock_guard l(mu_);
  Track& t = files_[path];
  if (covered) {
    t.unsynced = Minus(t.unsynced, *covered);
  } else {
    t.unsynced.Clear();
  }
  // A file grown while the sync ran keeps its new tail unsynced (its size is not durable).
  t.synced_size = size;
}

RangeSet FaultFileSystem::UnsyncedOf(const std::string& path) const {
  std::lock_guard l(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? RangeSet() : it->second.unsynced;
}

Status FaultFileSystem::Overwrite(File& f, const Track& t, LossMode mode) {
  MS_ASSIGN_OR_RETURN(FileInfo info, f.Stat());
  uint64_t size = info.size;
  if (t.synced_size != UINT64_MAX && size > t.synced_size) {
    MS_RETURN_IF_ERROR(f.Truncate(t.synced_size));
    size = t.synced_size;
  }
  for (ByteRange r : t.unsynced.ranges()) {
    uint64_t end = std::min(r.end, size);
    for (uint64_t off = r.begin; off < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(end - off, 65536));
      std::string buf(n, '\0');
      if (mode == LossMode::kGarbage)
        for (size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(0xA5 ^ ((off + i) * 31));
      MS_RETURN_IF_ERROR(f.PWrite(off, buf));
      off += n;
    }
  }
  return Status::Ok();
}

void FaultFileSystem::LoseUnsynced(const std::string& path, File& file) {
  auto info = file.Stat();
  if (!info.ok()) return;
  Track t;
  {
    std::lock_guard l(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return;
    t = it->second;
    // The size is kept (the kernel keeps i_size); only the dirty data is gone.
    t.synced_size = UINT64_MAX;
    it->second.unsynced.Clear();
    it->second.synced_size = info->size;
  }
  (void)Overwrite(file, t, LossMode::kZero);
  (void)file.DataSync();
}

void FaultFileSystem::NoteEntry(EntryOp op, const std::string& dir_a, std::string name_a,
                                const std::string& dir_b, std::string name_b) {
  std::lock_guard l(mu_);
  Entry e{op, dir_a, std::move(name_a), dir_b, std::move(name_b), {}};
  if (!dir_a.empty()) e.unsynced_dirs.insert(dir_a);
  if (!dir_b.empty()) e.unsynced_dirs.insert(dir_b);
  entries_.push_back(std::move(e));
}

void FaultFileSystem::NoteDirSynced(const std::string& dir) {
  std::lock_guard l(mu_);
  std::vector<Entry> keep;
  for (Entry& e : entries_) {
    e.unsynced_dirs.erase(dir);
    if (!e.unsynced_dirs.empty()) keep.push_back(std::move(e));
  }
  entries_ = std::move(keep);
}

void FaultFileSystem::ResetTracking() {
  std::lock_guard l(mu_);
  files_.clear();
  entries_.clear();
}

uint64_t FaultFileSystem::UnsyncedBytes() const {
  std::lock_guard l(mu_);
  uint64_t n = 0;
  for (const auto& [p, t] : files_) n += t.unsynced.CoveredBytes();
  return n;
}

Status FaultFileSystem::DropUnsynced(LossMode mode) {
  std::map<std::string, Track> files;
  std::vector<Entry> entries;
  {
    std::lock_guard l(mu_);
    files.swap(files_);
    entries.swap(entries_);
  }
  // File data first (paths as they were written), then undo directory entries newest first.
  for (const auto& [path, t] : files) {
    if (t.unsynced.empty()) continue;
    std::string dir, name;
    SplitP(path, &dir, &name);
    auto d = base_->OpenRoot(dir, false);
    if (!d.ok()) continue;
    auto f = (*d)->OpenFile(name, OpenMode::kWrite);
    if (!f.ok()) continue;
    MS_RETURN_IF_ERROR(Overwrite(**f, t, mode));
  }
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const Entry& e = *it;
    switch (e.op) {
      case EntryOp::kCreateFile:
      case EntryOp::kMakeDir: {
        auto d = base_->OpenRoot(e.dir_a, false);
        if (d.ok()) MS_RETURN_IF_ERROR((*d)->RemoveTree(e.name_a));
        break;
      }
      case EntryOp::kLink: {
        auto d = base_->OpenRoot(e.dir_b, false);
        if (d.ok() && (*d)->Stat(e.name_b).ok()) MS_RETURN_IF_ERROR((*d)->Unlink(e.name_b));
        break;
      }
      case EntryOp::kRename:
      case EntryOp::kExchange: {
        auto a = base_->OpenRoot(e.dir_a, false);
        auto b = base_->OpenRoot(e.dir_b, false);
        if (!a.ok() || !b.ok() || !(*b)->Stat(e.name_b).ok()) break;
        if (e.op == EntryOp::kExchange) {
          if ((*a)->Stat(e.name_a).ok())
            MS_RETURN_IF_ERROR((*b)->Exchange(e.name_b, **a, e.name_a));
        } else if (!(*a)->Stat(e.name_a).ok()) {
          MS_RETURN_IF_ERROR((*b)->Rename(e.name_b, **a, e.name_a));
        }
        break;
      }
    }
  }
  return Status::Ok();
}

}  // namespace modelsync::storage
