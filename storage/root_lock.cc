#include "storage/root_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "base/platform.h"
#include "storage/event_log.h"

namespace modelsync::storage {
namespace {

std::string LockPath(const std::string& root) { return JoinPath(StateDir(root), "lock"); }

// The holder's pid, left-aligned in this many characters and a newline (storage/LAYOUT.md).
constexpr size_t kPidWidth = 10;

int ReadPid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  int pid = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pid = pid * 10 + (buf[i] - '0');
  return pid;
}

// The holder's pid. The holder writes it right after taking the lock, so a racing loser may
// see an empty file or the pid of a dead earlier holder for a moment: look again briefly.
int HolderPid(int fd) {
  for (int i = 0; i < 100; ++i) {
    int pid = ReadPid(fd);
    if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) return pid;
    if (!platform::IsLockedElsewhere(fd)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return ReadPid(fd);
}

}  // namespace

Result<UniqueFd> OpenLockFile(const std::string& path, int mode) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                     static_cast<mode_t>(mode)));
  if (!fd.valid()) {
    if (errno == ELOOP)
      return Status::InvalidArgument(path + " is a symlink: modelsync never writes through one "
                                     "(remove it; it is made again as a plain file)");
    return Status::FromErrno(errno, "opening the lock file " + path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISREG(st.st_mode) || st.st_nlink > 1)
    return Status::InvalidArgument(path + (S_ISREG(st.st_mode) ? " has other hard links"
                                                               : " is not a regular file") +
                                   ": modelsync writes its pid there, so it refuses (remove it; "
                                   "it is made again as a plain file)");
  return fd;
}

std::string RootLock::Describe(int pid) {
  if (pid <= 0) return "another process";
  std::string cmd = platform::ProcessCommand(pid);
  return "pid " + std::to_string(pid) + (cmd.empty() ? "" : " (" + cmd + ")");
}

Result<std::unique_ptr<RootLock>> RootLock::Acquire(const std::string& root, bool wait,
                                                    const OnWait& on_wait,
                                                    const std::atomic<bool>* cancel) {
  MS_RETURN_IF_ERROR(MakeDirs(StateDir(root)));
  std::string path = LockPath(root);
  MS_ASSIGN_OR_RETURN(UniqueFd fd, OpenLockFile(path, 0644));
  if (int e = platform::LockExclusive(fd.get(), false); e != 0) {
    if (e != EWOULDBLOCK) return Status::FromErrno(e, "locking " + path);
    int pid = HolderPid(fd.get());
    if (!wait) {
      return Status::Locked("root " + root + " is in use by " + Describe(pid) +
                            " (wait for it to finish, or stop it)");
    }
    if (on_wait) on_wait(pid);
    if (!cancel) {
      if (int w = platform::LockExclusive(fd.get(), true); w != 0)
        return Status::FromErrno(w, "waiting for the lock " + path);
    } else {
      while (int w = platform::LockExclusive(fd.get(), false)) {
        if (w != EWOULDBLOCK) return Status::FromErrno(w, "locking " + path);
        if (cancel->load())
          return Status::Cancelled("stopped while waiting for root " + root + " (in use by " +
                                   (pid > 0 ? "pid " + std::to_string(pid) : "another process") +
                                   ")");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  // The pid in a record of fixed width, written over whatever an earlier holder left (always
  // the same width, so nothing of it remains; older versions wrote "<pid>\n", shorter): no
  // truncation first. Truncating frees the file's block each time and may wait for the
  // writeback of the page an earlier holder dirtied: 0.2-1.4 ms of every writer's start on
  // this VM's ext4, against ~15 ms for a whole no-op pull.
  std::string pid = std::to_string(::getpid());
  pid.resize(kPidWidth, ' ');
  pid += '\n';
  MS_RETURN_IF_ERROR(PWriteAll(fd.get(), pid.data(), pid.size(), 0, path));
  return std::unique_ptr<RootLock>(new RootLock(path, std::move(fd)));
}

int RootLock::Holder(const std::string& root) {
  UniqueFd fd(::open(LockPath(root).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid() || !platform::IsLockedElsewhere(fd.get())) return 0;
  return HolderPid(fd.get());
}

RootLock::~RootLock() {
  if (fd_.valid()) (void)platform::Unlock(fd_.get());
}

}  // namespace modelsync::storage
