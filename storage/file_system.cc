#include "storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "base/fs.h"
#include "base/path_rules.h"
#include "base/platform.h"

namespace modelsync::storage {
namespace {

std::string Join(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (p.empty() || p.back() != '/') p += '/';
  p += name;
  return p;
}

Status Err(int err, std::string_view op, const std::string& path) {
  return Status::FromErrno(err, std::string(op) + " " + path);
}

FileInfo ToInfo(const struct stat& st) {
  FileInfo i;
  if (S_ISREG(st.st_mode))
    i.type = FileInfo::Type::kFile;
  else if (S_ISDIR(st.st_mode))
    i.type = FileInfo::Type::kDir;
  else if (S_ISLNK(st.st_mode))
    i.type = FileInfo::Type::kSymlink;
  i.size = static_cast<uint64_t>(st.st_size);
  i.mode = st.st_mode & 07777;
  i.nlink = st.st_nlink;
  i.dev = st.st_dev;
  i.ino = st.st_ino;
  return i;
}

class RealFile final : public File {
 public:
  RealFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  const std::string& path() const override { return path_; }

  Status PWrite(uint64_t offset, std::string_view data) override {
    return PWriteAll(fd_.get(), data.data(), data.size(), offset, path_);
  }
  Result<size_t> PRead(uint64_t offset, void* buf, size_t n) override {
    size_t got = 0;
    char* p = static_cast<char*>(buf);
    while (got < n) {
      ssize_t r = ::pread(fd_.get(), p + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Err(errno, "read", path_);
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }
  Status DataSync() override {
    if (::fdatasync(fd_.get()) != 0) return Err(errno, "fdatasync", path_);
    return Status::Ok();
  }
  Status Sync() override {
    if (::fsync(fd_.get()) != 0) return Err(errno, "fsync", path_);
    return Status::Ok();
  }
  Status Allocate(uint64_t size) override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return Err(errno, "stat", path_);
    if (static_cast<uint64_t>(st.st_size) >= size) return Status::Ok();
    int rc = platform::Preallocate(fd_.get(), size);
    if (rc == 0) return Status::Ok();
    if (rc != EOPNOTSUPP) return Err(rc, "preallocate", path_);
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return Err(errno, "resize", path_);
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return Err(errno, "truncate", path_);
    return Status::Ok();
  }
  Result<FileInfo> Stat() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return Err(errno, "stat", path_);
    return ToInfo(st);
  }
  Status Chmod(uint32_t mode) override {
    if (::fchmod(fd_.get(), mode) != 0) return Err(errno, "chmod", path_);
    return Status::Ok();
  }
  void StartWriteback(uint64_t offset, uint64_t n) override {
    platform::StartWriteback(fd_.get(), offset, n);
  }
  void DropCache(uint64_t offset, uint64_t n) override { platform::DropCache(fd_.get(), offset, n); }
  Status SetDirectIO(bool on) override {
    if (int rc = platform::SetDirectIO(fd_.get(), on); rc != 0) return Err(rc, "direct I/O", path_);
    return Status::Ok();
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

class RealDir final : public Dir {
 public:
  RealDir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  const std::string& path() const override { return path_; }
  int fd() const override { return fd_.get(); }

  Result<std::unique_ptr<Dir>> OpenDir(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string n(name);
    int f = ::openat(fd_.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) {
      int e = errno;
      if (e == ELOOP || e == ENOTDIR)
        return Status::IOError(Join(path_, name) +
                                   " is not a directory (a symlink or a file is in the way; "
                                   "move it away and run again)",
                               e);
      return Err(e, "open directory", Join(path_, name));
    }
    return std::unique_ptr<Dir>(new RealDir(UniqueFd(f), Join(path_, name)));
  }
  Status MakeDir(std::string_view name, bool* created) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string n(name);
    if (created) *created = false;
    if (::mkdirat(fd_.get(), n.c_str(), 0755) == 0) {
      if (created) *created = true;
      return Status::Ok();
    }
    int e = errno;
    if (e != EEXIST) return Err(e, "create directory", Join(path_, name));
    struct stat st {};
    if (::fstatat(fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Err(errno, "stat", Join(path_, name));
    if (!S_ISDIR(st.st_mode))
      return Status::IOError(Join(path_, name) + " exists and is not a directory", EEXIST);
    return Status::Ok();
  }
  Result<std::unique_ptr<File>> OpenFile(std::string_view name, OpenMode mode,
                                         uint32_t perm) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    int flags = O_NOFOLLOW | O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead:
        flags |= O_RDONLY;
        break;
      case OpenMode::kWrite:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreate:
        flags |= O_RDWR | O_CREAT;
        break;
      case OpenMode::kCreateExclusive:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
      case OpenMode::kCreateTruncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    std::string n(name);
    int f = ::openat(fd_.get(), n.c_str(), flags, perm);
    if (f < 0) {
      int e = errno;
      if (e == ELOOP)
        return Status::IOError(Join(path_, name) + " is a symlink; refusing to follow it", e);
      return Err(e, "open", Join(path_, name));
    }
    // What an open finds may be a FIFO or a device; what O_EXCL made is a new regular file.
    struct stat st {};
    if (mode != OpenMode::kCreateExclusive && (::fstat(f, &st) != 0 || !S_ISREG(st.st_mode))) {
      ::close(f);
      return Status::IOError(Join(path_, name) + " is not a regular file", EINVAL);
    }
    return std::unique_ptr<File>(new RealFile(UniqueFd(f), Join(path_, name)));
  }
  Status Rename(std::string_view name, Dir& to, std::string_view to_name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    std::string a(name), b(to_name);
    if (::renameat(fd_.get(), a.c_str(), to.fd(), b.c_str()) != 0)
      return Err(errno, "rename " + Join(path_, name) + " to", Join(to.path(), to_name));
    return Status::Ok();
  }
  Status Exchange(std::string_view name, Dir& to, std::string_view to_name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    std::string a(name), b(to_name);
    if (int e = platform::ExchangeAt(fd_.get(), a.c_str(), to.fd(), b.c_str()); e != 0) {
      std::string what = "exchange " + Join(path_, name) + " with " + Join(to.path(), to_name);
      if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP)
        return Status::InvalidArgument(what + ": not supported by this file system", EINVAL);
      return Status::FromErrno(e, what);
    }
    return Status::Ok();
  }
  Status Link(std::string_view name, Dir& to, std::string_view to_name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    std::string a(name), b(to_name);
    if (::linkat(fd_.get(), a.c_str(), to.fd(), b.c_str(), 0) != 0)
      return Err(errno, "link " + Join(path_, name) + " to", Join(to.path(), to_name));
    return Status::Ok();
  }
  Status Symlink(std::string_view target, std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string t(target), n(name);
    if (t.empty() || t.find('\0') != std::string::npos)
      return Status::InvalidArgument("symlink " + Join(path_, name) + ": empty or NUL in target");
    if (::symlinkat(t.c_str(), fd_.get(), n.c_str()) != 0)
      return Err(errno, "symlink " + t + " at", Join(path_, name));
    return Status::Ok();
  }
  Result<std::string> ReadLink(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string n(name);
    std::string buf(4096, '\0');
    ssize_t len = ::readlinkat(fd_.get(), n.c_str(), buf.data(), buf.size());
    if (len < 0) {
      if (errno == EINVAL)
        return Status::InvalidArgument(Join(path_, name) + " is not a symlink", EINVAL);
      return Err(errno, "readlink", Join(path_, name));
    }
    if (static_cast<size_t>(len) >= buf.size())
      return Status::InvalidArgument(Join(path_, name) + ": symlink target too long");
    buf.resize(static_cast<size_t>(len));
    return buf;
  }
  Status Clone(std::string_view name, Dir& to, std::string_view to_name, uint32_t perm) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    MS_RETURN_IF_ERROR(CheckComponent(to_name, to.path()));
    std::string a(name), b(to_name);
    UniqueFd src(::openat(fd_.get(), a.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!src.valid()) return Err(errno, "open", Join(path_, name));
    UniqueFd dst(::openat(to.fd(), b.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          static_cast<mode_t>(perm)));
    if (!dst.valid()) return Err(errno, "create", Join(to.path(), to_name));
    if (int e = platform::CloneFile(src.get(), dst.get()); e != 0) {
      ::unlinkat(to.fd(), b.c_str(), 0);
      if (e == EOPNOTSUPP || e == EXDEV || e == EINVAL || e == ENOTTY || e == EPERM)
        return Status::InvalidArgument("reflink " + Join(path_, name) + ": " + std::strerror(e), e);
      return Err(e, "reflink " + Join(path_, name) + " to", Join(to.path(), to_name));
    }
    if (::fchmod(dst.get(), static_cast<mode_t>(perm)) != 0 || ::fsync(dst.get()) != 0) {
      int e = errno;
      ::unlinkat(to.fd(), b.c_str(), 0);
      return Err(e, "sync", Join(to.path(), to_name));
    }
    return Status::Ok();
  }
  bool ClonesFiles() override { return platform::ClonesFiles(fd_.get()); }
  Status Unlink(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string n(name);
    if (::unlinkat(fd_.get(), n.c_str(), 0) != 0) return Err(errno, "remove", Join(path_, name));
    return Status::Ok();
  }
  Status RemoveDir(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string n(name);
    if (::unlinkat(fd_.get(), n.c_str(), AT_REMOVEDIR) != 0)
      return Err(errno, "remove directory", Join(path_, name));
    return Status::Ok();
  }
  Status RemoveTree(std::string_view name) override {
    auto info = Stat(name);
    if (!info.ok()) return info.status().IsNotFound() ? Status::Ok() : info.status();
    if (info->type != FileInfo::Type::kDir) return Unlink(name);
    MS_ASSIGN_OR_RETURN(auto sub, OpenDir(name));
    MS_ASSIGN_OR_RETURN(auto names, sub->List());
    for (const auto& n : names) MS_RETURN_IF_ERROR(sub->RemoveTree(n));
    return RemoveDir(name);
  }
  Result<FileInfo> Stat(std::string_view name) override {
    MS_RETURN_IF_ERROR(CheckComponent(name, path_));
    std::string n(name);
    struct stat st {};
    if (::fstatat(fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Err(errno, "stat", Join(path_, name));
    return ToInfo(st);
  }
  Result<std::vector<std::string>> List() override {
    int f = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f < 0) return Err(errno, "open directory", path_);
    DIR* d = ::fdopendir(f);
    if (!d) {
      int e = errno;
      ::close(f);
      return Err(e, "list directory", path_);
    }
    std::vector<std::string> out;
    errno = 0;
    while (struct dirent* ent = ::readdir(d)) {
      std::string_view n(ent->d_name);
      if (n != "." && n != "..") out.emplace_back(n);
    }
    int e = errno;
    ::closedir(d);
    if (e != 0) return Err(e, "list directory", path_);
    std::sort(out.begin(), out.end());
    return out;
  }
  Status Sync() override {
    if (::fsync(fd_.get()) != 0) return Err(errno, "fsync directory", path_);
    return Status::Ok();
  }
  Status SyncFileSystem() override {
    int e = platform::SyncFileSystem(fd_.get());
    if (e == ENOSYS)
      return Status::InvalidArgument("syncfs is not available on this platform (" +
                                     std::string(platform::Name()) + ")");
    if (e != 0) return Err(e, "syncfs of the file system of", path_);
    return Status::Ok();
  }
  Result<uint64_t> FreeBytes() override {
    struct statvfs vfs {};
    if (::fstatvfs(fd_.get(), &vfs) != 0) return Err(errno, "statvfs", path_);
    return static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

class RealFs final : public FileSystem {
 public:
  Result<std::unique_ptr<Dir>> OpenRoot(const std::string& path, bool create) override {
    if (path.empty()) return Status::InvalidArgument("the root directory path is empty");
    if (create) MS_RETURN_IF_ERROR(MakeDirs(path));
    int f = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f < 0) return Err(errno, "open root directory", path);
    return std::unique_ptr<Dir>(new RealDir(UniqueFd(f), path));
  }
  Result<std::string> ResolvePath(const std::string& path, bool create) override {
    if (path.empty()) return Status::InvalidArgument("the root directory path is empty");
    if (create) MS_RETURN_IF_ERROR(MakeDirs(path));
    char buf[PATH_MAX];
    if (!::realpath(path.c_str(), buf)) return Err(errno, "resolve", path);
    return std::string(buf);
  }
};

}  // namespace

FileSystem* RealFileSystem() {
  static RealFs fs;
  return &fs;
}

Status CheckComponent(std::string_view name, std::string_view where) {
  auto bad = [&](const char* why) {
    std::string shown;
    for (char c : name) shown += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
    return Status::InvalidArgument("unsafe file name '" + shown + "' under " + std::string(where) +
                                   ": " + why);
  };
  if (const char* why = ComponentProblem(name)) return bad(why);
  return Status::Ok();
}

namespace {

// The directory holding rel's last component (nullptr: base itself) and that component.
Result<std::pair<std::unique_ptr<Dir>, std::string>> ParentOf(Dir& base, std::string_view rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string_view::npos)
    return std::make_pair(std::unique_ptr<Dir>(), std::string(rel));
  MS_ASSIGN_OR_RETURN(auto d, OpenDirPath(base, rel.substr(0, slash), false));
  return std::make_pair(std::move(d), std::string(rel.substr(slash + 1)));
}

}  // namespace

Result<FileInfo> StatPath(Dir& base, std::string_view rel) {
  MS_ASSIGN_OR_RETURN(auto p, ParentOf(base, rel));
  return (p.first ? *p.first : base).Stat(p.second);
}

Status UnlinkPath(Dir& base, std::string_view rel) {
  MS_ASSIGN_OR_RETURN(auto p, ParentOf(base, rel));
  return (p.first ? *p.first : base).Unlink(p.second);
}

Result<std::unique_ptr<Dir>> OpenDirPath(Dir& base, std::string_view rel, bool create) {
  if (rel.empty()) return Status::InvalidArgument("empty directory path under " + base.path());
  std::unique_ptr<Dir> cur;
  Dir* at = &base;
  size_t pos = 0;
  for (;;) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string_view::npos) slash = rel.size();
    std::string_view comp = rel.substr(pos, slash - pos);
    MS_RETURN_IF_ERROR(CheckComponent(comp, at->path()));
    if (create) {
      bool made = false;
      MS_RETURN_IF_ERROR(at->MakeDir(comp, &made));
      if (made) {
        // The new entry must survive a power loss. If its sync fails, the (empty) directory
        // goes again: a later call would find it and take it as durable.
        if (Status s = at->Sync(); !s.ok()) {
          (void)at->RemoveDir(comp);
          return s;
        }
      }
    }
    MS_ASSIGN_OR_RETURN(auto next, at->OpenDir(comp));
    cur = std::move(next);
    at = cur.get();
    if (slash == rel.size()) break;
    pos = slash + 1;
  }
  return cur;
}

Status CopyFile(Dir& from, std::string_view name, Dir& to, std::string_view to_name,
                uint32_t perm) {
  MS_ASSIGN_OR_RETURN(auto in, from.OpenFile(name, OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(auto out, to.OpenFile(to_name, OpenMode::kCreateExclusive, perm));
  std::string buf(1 << 20, '\0');
  uint64_t off = 0;
  for (;;) {
    MS_ASSIGN_OR_RETURN(size_t n, in->PRead(off, buf.data(), buf.size()));
    if (n == 0) break;
    MS_RETURN_IF_ERROR(out->PWrite(off, std::string_view(buf.data(), n)));
    off += n;
  }
  return out->DataSync();
}

}  // namespace modelsync::storage
