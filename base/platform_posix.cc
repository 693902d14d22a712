// base/platform.h with portable POSIX calls only (-DMODELSYNC_PLATFORM=posix): no renameat2,
// fallocate, sync_file_range, syncfs, fadvise, FICLONE, OFD locks or accept4. What each
// fallback gives up: docs/PLATFORM.md. A Darwin port replaces the ENOSYS/no-op entries with
// renamex_np(RENAME_SWAP), F_PREALLOCATE, F_FULLFSYNC and clonefile.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/platform.h"

namespace modelsync::platform {

const char* Name() { return "posix"; }

int ExchangeAt(int, const char*, int, const char*) { return ENOSYS; }

int Preallocate(int, uint64_t) { return EOPNOTSUPP; }

void StartWriteback(int, uint64_t, uint64_t) {}
void DropCache(int, uint64_t, uint64_t) {}
void AdviseSequential(int) {}

void AdviseHugePages(void*, size_t) {}

int SetDirectIO(int, bool) { return EOPNOTSUPP; }

int SyncFileSystem(int) { return ENOSYS; }

int CloneFile(int, int) { return EOPNOTSUPP; }
bool ClonesFiles(int) { return false; }

int LockExclusive(int fd, bool wait) {
  int rc;
  do rc = ::flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
  while (rc != 0 && errno == EINTR && wait);
  if (rc == 0) return 0;
  return errno == EWOULDBLOCK || errno == EAGAIN ? EWOULDBLOCK : errno;
}

int Unlock(int fd) { return ::flock(fd, LOCK_UN) == 0 ? 0 : errno; }

bool IsLockedElsewhere(int fd) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
    (void)::flock(fd, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK || errno == EAGAIN;
}

namespace {
// A new socket: close-on-exec, and no SIGPIPE where the option exists (Darwin).
int PrepareSocket(int s) {
  (void)::fcntl(s, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
  int one = 1;
  (void)::setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return s;
}
}  // namespace

int SocketCloexec(int domain, int type) {
  int s = ::socket(domain, type, 0);
  return s < 0 ? -errno : PrepareSocket(s);
}

int AcceptCloexec(int listen_fd) {
  int c;
  do c = ::accept(listen_fd, nullptr, nullptr);
  while (c < 0 && errno == EINTR);
  return c < 0 ? -errno : PrepareSocket(c);
}

ssize_t SendNoSignal(int fd, const void* data, size_t n) {
#ifdef MSG_NOSIGNAL
  ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
#else
  ssize_t w = ::send(fd, data, n, 0);  // SO_NOSIGPIPE set on the socket (Darwin)
#endif
  return w >= 0 ? w : -errno;
}

std::string ProcessCommand(int /*pid*/) { return ""; }

}  // namespace modelsync::platform
