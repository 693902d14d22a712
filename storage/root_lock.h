// RootLock: one writer per root.
//
// The lock is an open-file-description lock (platform::LockExclusive: fcntl F_OFD_SETLK on
// linux, flock on posix; exclusive, whole file) on <root>/.modelsync/lock, which holds the
// holder's pid as text. The kernel drops it when the holder's descriptor closes, including on
// kill -9, so a crashed writer never leaves the root locked. Both kinds conflict between two
// opens in one process, so tests can race in-process too. The pid inside the file is informational (for messages); the kernel lock is
// the truth.
//
// Thread safety: a RootLock is a value owned by one thread; Acquire may be called from any.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "base/fs.h"
#include "base/status.h"

namespace modelsync::storage {

// Opens (creating, mode `mode`) a lock file that modelsync writes its pid into, never
// through a symlink (O_NOFOLLOW) and only when it is a regular file with no other hard link:
// a link planted at its name makes this fail (kInvalidArgument naming it) instead of
// truncating what it points to.
Result<UniqueFd> OpenLockFile(const std::string& path, int mode);

class RootLock {
 public:
  // Called once, before blocking, with the holder's pid (0 if unknown), when wait is true.
  using OnWait = std::function<void(int holder_pid)>;

  // Takes root's writer lock (creating <root>/.modelsync and the lock file when missing).
  // wait=false: kLocked "root <root> is in use by pid N" when another writer holds it.
  // wait=true: blocks until the holder lets go (calls on_wait first); when cancel is given,
  // it is polled every 50 ms while waiting and kCancelled returned once it is true (a daemon
  // told to stop while a user's pull holds the root stops at once).
  // kIOError / kNoSpace when the lock file cannot be created.
  static Result<std::unique_ptr<RootLock>> Acquire(const std::string& root, bool wait,
                                                   const OnWait& on_wait = {},
                                                   const std::atomic<bool>* cancel = nullptr);

  // The pid of the process holding root's lock, 0 when nobody does (or it is not known).
  // Never takes the lock.
  static int Holder(const std::string& root);

  // The holder as a user reads it: "pid 4242 (modelsync pull org/name)", "pid 4242" when its
  // command is unknown, "another process" when the pid is (0).
  static std::string Describe(int pid);

  ~RootLock();  // releases the lock
  RootLock(const RootLock&) = delete;
  RootLock& operator=(const RootLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  RootLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace modelsync::storage
