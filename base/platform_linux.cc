// base/platform.h on Linux (the default build).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/platform.h"

namespace modelsync::platform {
namespace {

int OfdLock(int fd, short type, int cmd) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // the whole file
  fl.l_pid = 0;  // required for OFD locks
  int rc;
  do rc = ::fcntl(fd, cmd, &fl);
  while (rc != 0 && errno == EINTR && cmd == F_OFD_SETLKW);
  return rc == 0 ? 0 : errno;
}

}  // namespace

const char* Name() { return "linux"; }

int ExchangeAt(int from_dir, const char* from, int to_dir, const char* to) {
  return ::renameat2(from_dir, from, to_dir, to, RENAME_EXCHANGE) == 0 ? 0 : errno;
}

int Preallocate(int fd, uint64_t size) {
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  return (rc == EINVAL || rc == ENOSYS) ? EOPNOTSUPP : rc;
}

void StartWriteback(int fd, uint64_t offset, uint64_t n) {
  (void)::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(n),
                          SYNC_FILE_RANGE_WRITE);
}

void DropCache(int fd, uint64_t offset, uint64_t n) {
  (void)::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(n),
                        POSIX_FADV_DONTNEED);
}

void AdviseSequential(int fd) { (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); }

void AdviseHugePages(void* p, size_t n) { (void)::madvise(p, n, MADV_HUGEPAGE); }

int SetDirectIO(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return errno;
  return ::fcntl(fd, F_SETFL, on ? (flags | O_DIRECT) : (flags & ~O_DIRECT)) == 0 ? 0 : errno;
}

int SyncFileSystem(int fd) { return ::syncfs(fd) == 0 ? 0 : errno; }

int CloneFile(int src_fd, int dst_fd) { return ::ioctl(dst_fd, FICLONE, src_fd) == 0 ? 0 : errno; }

bool ClonesFiles(int dir_fd) {
  struct statfs sf;
  if (::fstatfs(dir_fd, &sf) != 0) return false;
  constexpr long kBtrfs = 0x9123683E, kXfs = 0x58465342;
  return static_cast<long>(sf.f_type) == kBtrfs || static_cast<long>(sf.f_type) == kXfs;
}

int LockExclusive(int fd, bool wait) {
  int e = OfdLock(fd, F_WRLCK, wait ? F_OFD_SETLKW : F_OFD_SETLK);
  return (e == EAGAIN || e == EACCES) ? EWOULDBLOCK : e;
}

int Unlock(int fd) { return OfdLock(fd, F_UNLCK, F_OFD_SETLK); }

bool IsLockedElsewhere(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK;
}

int SocketCloexec(int domain, int type) {
  int s = ::socket(domain, type | SOCK_CLOEXEC, 0);
  return s >= 0 ? s : -errno;
}

int AcceptCloexec(int listen_fd) {
  int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  return c >= 0 ? c : -errno;
}

ssize_t SendNoSignal(int fd, const void* data, size_t n) {
  ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
  return w >= 0 ? w : -errno;
}

std::string ProcessCommand(int pid) {
  if (pid <= 0) return "";
  std::string path = "/proc/" + std::to_string(pid) + "/cmdline";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return "";
  std::string raw(buf, static_cast<size_t>(n));
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  std::string out;
  size_t at = 0;
  bool first = true;
  while (at <= raw.size()) {
    size_t end = raw.find('\0', at);
    if (end == std::string::npos) end = raw.size();
    std::string arg = raw.substr(at, end - at);
    if (first) arg = arg.substr(arg.rfind('/') == std::string::npos ? 0 : arg.rfind('/') + 1);
    for (char& c : arg)
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    out += (first ? "" : " ") + arg;
    first = false;
    at = end + 1;
  }
  if (out.size() > 160) out = out.substr(0, 157) + "...";
  return out;
}

}  // namespace modelsync::platform
