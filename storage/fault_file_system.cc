#include "storage/fault_file_system.h"

#include <cerrno>
#include <optional>
#include <string_view>

namespace modelsync::storage {
namespace {

std::string JoinP(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (p.empty() || p.back() != '/') p += '/';
  p += name;
  return p;
}

bool IsCreate(OpenMode m) {
  return m == OpenMode::kCreate || m == OpenMode::kCreateExclusive ||
         m == OpenMode::kCreateTruncate;
}

// Before() on construction, After() on destruction: the op is "in flight" in between.
class OpScope {
 public:
  OpScope(FaultFileSystem* fs, FsOp op, const std::string& path)
      : fs_(fs), err_(fs->Before(op, path)) {}
  ~OpScope() { fs_->After(); }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  int err() const { return err_; }

 private:
  FaultFileSystem* fs_;
  int err_;
};

class FaultFile final : public File {
 public:
  FaultFile(FaultFileSystem* fs, std::unique_ptr<File> base) : fs_(fs), base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }

  Status PWrite(uint64_t offset, std::string_view data) override {
    OpScope op_scope(fs_, FsOp::kWrite, path());
    if (int e = op_scope.err()) return Status::FromErrno(e, "write " + path());
    Status s = base_->PWrite(offset, data);
    // Even a failed write may have landed partly: count the whole range as unsynced.
    fs_->NoteWrite(path(), ByteRange{offset, offset + data.size()});
    return s;
  }
  Result<size_t> PRead(uint64_t offset, void* buf, size_t n) override {
    if (int e = fs_->read_errno()) return Status::FromErrno(e, "read " + path());
    return base_->PRead(offset, buf, n);
  }
  Status DataSync() override { return DoSync(true); }
  Status Sync() override { return DoSync(false); }
  Status Allocate(uint64_t size) override {
    OpScope op_scope(fs_, FsOp::kAllocate, path());
    if (int e = op_scope.err()) return Status::FromErrno(e, "preallocate " + path());
    MS_ASSIGN_OR_RETURN(FileInfo before, base_->Stat());
    MS_RETURN_IF_ERROR(base_->Allocate(size));
    fs_->NoteResize(path(), before.size, std::max(before.size, size));
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    OpScope op_scope(fs_, FsOp::kAllocate, path());
    if (int e = op_scope.err()) return Status::FromErrno(e, "truncate " + path());
    MS_ASSIGN_OR_RETURN(FileInfo before, base_->Stat());
    MS_RETURN_IF_ERROR(base_->Truncate(size));
    fs_->NoteResize(path(), before.size, size);
    return Status::Ok();
  }
  Result<FileInfo> Stat() override { return base_->Stat(); }
  Status Chmod(uint32_t mode) override { return base_->Chmod(mode); }
  // Hints only: unsynced bytes stay unsynced (and losable) as far as the fault layer knows.
  void StartWriteback(uint64_t offset, uint64_t n) override { base_->StartWriteback(offset, n); }
  void DropCache(uint64_t offset, uint64_t n) override { base_->DropCache(offset, n); }

 private:
  Status DoSync(bool data_only) {
    OpScope op_scope(fs_, FsOp::kSync, path());
    if (int e = op_scope.err()) {
      fs_->LoseUnsynced(path(), *base_);
      return Status::FromErrno(e, (data_only ? "fdatasync " : "fsync ") + path());
    }
    // Only what was written before the sync began is durable after it: writes that land
    // from other threads while fdatasync runs stay unsynced (and losable).
    MS_ASSIGN_OR_RETURN(FileInfo before, base_->Stat());
    RangeSet covered = fs_->UnsyncedOf(path());
    Status s = data_only ? base_->DataSync() : base_->Sync();
    if (!s.ok()) return s;
    fs_->NoteFileSynced(path(), before.size, &covered);
    return s;
  }
  FaultFileSystem* fs_;
  std::unique_ptr<File> base_;
};

class FaultDir final : public Dir {
 public:
  FaultDir(FaultFileSystem* fs, std::unique_ptr<Dir> base) : fs_(fs), base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  int fd() const override { return base_->fd(); }

  Result<std::unique_ptr<Dir>> OpenDir(std::string_view name) override {
    MS_ASSIGN_OR_RETURN(auto d, base_->OpenDir(name));
    return std::unique_ptr<Dir>(new FaultDir(fs_, std::move(d)));
  }
  Status MakeDir(std::string_view name, bool* created) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    OpScope op_scope(fs_, FsOp::kCreate, JoinP(path(), name));
    if (int e = op_scope.err())
      return Status::FromErrno(e, "create directory " + JoinP(path(), name));
    bool made = false;
    MS_RETURN_IF_ERROR(base_->MakeDir(name, &made));
    if (created) *created = made;
    if (made) fs_->NoteEntry(FaultFileSystem::EntryOp::kMakeDir, path(), std::string(name), "", "");
    return Status::Ok();
  }
  Result<std::unique_ptr<File>> OpenFile(std::string_view name, OpenMode mode,
                                         uint32_t perm) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    std::string full = JoinP(path(), name);
    bool existed = true;
    uint64_t old_size = 0;
    std::optional<OpScope> op_scope;  // only a create is a counted op
    if (IsCreate(mode)) {
      auto st = base_->Stat(name);
      existed = st.ok();
      if (existed) old_size = st->size;
      op_scope.emplace(fs_, FsOp::kCreate, full);
      if (int e = op_scope->err()) return Status::FromErrno(e, "open " + full);
    }
    MS_ASSIGN_OR_RETURN(auto f, base_->OpenFile(name, mode, perm));
    MS_ASSIGN_OR_RETURN(FileInfo now, f->Stat());
    if (!existed) {
      fs_->NoteEntry(FaultFileSystem::EntryOp::kCreateFile, path(), std::string(name), "", "");
      fs_->NoteFileOpened(full, 0, true);
    } else {
      fs_->NoteFileOpened(full, std::max(old_size, now.size), false);
      if (now.size < old_size) fs_->NoteResize(full, old_size, now.size);
    }
    return std::unique_ptr<File>(new FaultFile(fs_, std::move(f)));
  }
  Status Rename(std::string_view name, Dir& to, std::string_view to_name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    std::string target = JoinP(to.path(), to_name);
    OpScope op_scope(fs_, FsOp::kRename, JoinP(path(), name));
    if (int e = op_scope.err())
      return Status::FromErrno(e, "rename " + JoinP(path(), name) + " to " + target);
    bool replacing = to.Stat(to_name).ok();
    MS_RETURN_IF_ERROR(base_->Rename(name, to, to_name));
    if (!replacing)
      fs_->NoteEntry(FaultFileSystem::EntryOp::kRename, path(), std::string(name), to.path(),
                     std::string(to_name));
    return Status::Ok();
  }
  Status Exchange(std::string_view name, Dir& to, std::string_view to_name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    OpScope op_scope(fs_, FsOp::kRename, JoinP(path(), name));
    if (int e = op_scope.err())
      return Status::FromErrno(
          e, "exchange " + JoinP(path(), name) + " with " + JoinP(to.path(), to_name));
    MS_RETURN_IF_ERROR(base_->Exchange(name, to, to_name));
    fs_->NoteEntry(FaultFileSystem::EntryOp::kExchange, path(), std::string(name), to.path(),
                   std::string(to_name));
    return Status::Ok();
  }
  Status Link(std::string_view name, Dir& to, std::string_view to_name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    std::string target = JoinP(to.path(), to_name);
    OpScope op_scope(fs_, FsOp::kLink, target);
    if (int e = op_scope.err())
      return Status::FromErrno(e, "link " + JoinP(path(), name) + " to " + target);
    MS_RETURN_IF_ERROR(base_->Link(name, to, to_name));
    fs_->NoteEntry(FaultFileSystem::EntryOp::kLink, "", "", to.path(), std::string(to_name));
    return Status::Ok();
  }
  Status Symlink(std::string_view target, std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    std::string full = JoinP(path(), name);
    OpScope op_scope(fs_, FsOp::kCreate, full);
    if (int e = op_scope.err()) return Status::FromErrno(e, "symlink at " + full);
    MS_RETURN_IF_ERROR(base_->Symlink(target, name));
    fs_->NoteEntry(FaultFileSystem::EntryOp::kCreateFile, path(), std::string(name), "", "");
    return Status::Ok();
  }
  Result<std::string> ReadLink(std::string_view name) override { return base_->ReadLink(name); }
  Status Unlink(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    OpScope op_scope(fs_, FsOp::kRemove, JoinP(path(), name));
    if (int e = op_scope.err()) return Status::FromErrno(e, "remove " + JoinP(path(), name));
    return base_->Unlink(name);
  }
  Status RemoveDir(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    OpScope op_scope(fs_, FsOp::kRemove, JoinP(path(), name));
    if (int e = op_scope.err())
      return Status::FromErrno(e, "remove directory " + JoinP(path(), name));
    return base_->RemoveDir(name);
  }
  Status RemoveTree(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path()));
    OpScope op_scope(fs_, FsOp::kRemove, JoinP(path(), name));
    if (int e = op_scope.err()) return Status::FromErrno(e, "remove " + JoinP(path(), name));
    return base_->RemoveTree(name);
  }
  Result<FileInfo> Stat(std::string_view name) override { return base_->Stat(name); }
  Result<std::vector<std::string>> List() override { return base_->List(); }
  Status Sync() override {
    OpScope op_scope(fs_, FsOp::kSync, path());
    if (int e = op_scope.err()) return Status::FromErrno(e, "fsync directory " + path());
    MS_RETURN_IF_ERROR(base_->Sync());
    fs_->NoteDirSynced(path());
    return Status::Ok();
  }
  // Counted as one kSync op; success makes everything tracked durable (files and entries).
  Status SyncFileSystem() override {
    OpScope op_scope(fs_, FsOp::kSync, path());
    if (int e = op_scope.err())
      return Status::FromErrno(e, "syncfs of the file system of " + path());
    MS_RETURN_IF_ERROR(base_->SyncFileSystem());
    fs_->ResetTracking();
    return Status::Ok();
  }
  Result<uint64_t> FreeBytes() override {
    if (auto fake = fs_->FakeFreeBytes()) return *fake;
    return base_->FreeBytes();
  }

 private:
  FaultFileSystem* fs_;
  std::unique_ptr<Dir> base_;
};

}  // namespace

const char* FsOpName(FsOp op) {
  switch (op) {
    case FsOp::kWrite:
      return "write";
    case FsOp::kSync:
      return "sync";
    case FsOp::kRename:
      return "rename";
    case FsOp::kLink:
      return "link";
    case FsOp::kCreate:
      return "create";
    case FsOp::kRemove:
      return "remove";
    case FsOp::kAllocate:
      return "allocate";
    case FsOp::kCommit:
      return "commit";
  }
  return "?";
}

FaultFileSystem::FaultFileSystem(FileSystem* base) : base_(base) {}
FaultFileSystem::~FaultFileSystem() = default;

Result<std::string> FaultFileSystem::ResolvePath(const std::string& path, bool create) {
  return base_->ResolvePath(path, create);
}

Result<std::unique_ptr<Dir>> FaultFileSystem::OpenRoot(const std::string& path, bool create) {
  MS_ASSIGN_OR_RETURN(auto d, base_->OpenRoot(path, create));
  return std::unique_ptr<Dir>(new FaultDir(this, std::move(d)));
}

uint64_t FaultFileSystem::Count(FsOp op) const {
  std::lock_guard l(mu_);
  return counts_[static_cast<size_t>(op)];
}
uint64_t FaultFileSystem::TotalCount() const {
  std::lock_guard l(mu_);
  return total_;
}
void FaultFileSystem::ResetCounts() {
  std::lock_guard l(mu_);
  counts_.fill(0);
  total_ = 0;
}
void FaultFileSystem::FailNth(FsOp op, uint64_t nth, int err, bool persistent) {
  std::lock_guard l(mu_);
  rules_.push_back(Rule{false, op, nth, err, persistent});
}
void FaultFileSystem::FailNthAny(uint64_t nth, int err, bool persistent) {
  std::lock_guard l(mu_);
  rules_.push_back(Rule{true, FsOp::kWrite, nth, err, persistent});
}
void FaultFileSystem::ClearFaults() {
  std::lock_guard l(mu_);
  rules_.clear();
}
uint64_t FaultFileSystem::InjectedCount() const {
  std::lock_guard l(mu_);
  return injected_;
}
void FaultFileSystem::SetFreeBytes(std::optional<uint64_t> bytes) {
  std::lock_guard l(mu_);
  free_bytes_ = bytes;
}
std::optional<uint64_t> FaultFileSystem::FakeFreeBytes() const {
  std::lock_guard l(mu_);
  return free_bytes_;
}
void FaultFileSystem::SetHook(Hook hook) {
  std::lock_guard l(mu_);
  hook_ = std::move(hook);
}

int FaultFileSystem::Before(FsOp op, const std::string& path) {
  Hook hook;
  uint64_t index;
  int err = 0;
  {
    std::unique_lock l(mu_);
    // Frozen: this op never happens (the process is about to lose power and _exit).
    HoldIfFrozen(l);
    uint64_t kc = ++counts_[static_cast<size_t>(op)];
    index = ++total_;
    for (const Rule& r : rules_) {
      uint64_t c = r.any ? index : (r.op == op ? kc : 0);
      if (c == 0) continue;
      if (c == r.nth || (r.persistent && c > r.nth)) {
        err = r.err;
        break;
      }
    }
    if (err) ++injected_;
    hook = hook_;
  }
  if (hook) hook(op, index, path);
  std::unique_lock l(mu_);
  // Frozen by this op's own hook (or another thread's): never perform it.
  HoldIfFrozen(l);
  ++in_flight_;
  return err;
}

void FaultFileSystem::After() {
  std::lock_guard l(mu_);
  --in_flight_;
  cv_.notify_all();
}

int FaultFileSystem::Tick(FsOp op, const std::string& what) {
  int err = Before(op, what);
  After();
  return err;
}

void FaultFileSystem::Freeze() {
  std::unique_lock l(mu_);
  frozen_ = true;
  cv_.wait(l, [this] { return in_flight_ == 0; });
}

void FaultFileSystem::HoldIfFrozen(std::unique_lock<std::mutex>& l) {
  if (!frozen_) return;
  ++held_;
  cv_.wait(l, [this] { return !frozen_; });  // for good: a freeze is never undone
}

uint64_t FaultFileSystem::held() const {
  std::lock_guard l(mu_);
  return held_;
}

bool FaultFileSystem::frozen() const {
  std::lock_guard l(mu_);
  return frozen_;
}

}  // namespace modelsync::storage
