// The operating system's non-portable calls, in one place: base/platform_linux.cc (what
// modelsync uses on Linux) or base/platform_posix.cc (portable POSIX only: what a port to
// macOS, iOS or a BSD starts from), chosen at build time (-DMODELSYNC_PLATFORM=linux|posix).
// docs/PLATFORM.md says what each call guarantees and what the posix fallback gives up.
//
// Calls return 0 or an errno value (never set errno for the caller to read); "hint" calls
// return nothing and may do nothing. Thread safety: like the system calls they wrap.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace modelsync::platform {

// "linux" or "posix".
const char* Name();

// Atomically exchanges two directory entries (renameat2 RENAME_EXCHANGE). ENOSYS where the
// platform has no such call (posix); EINVAL/EOPNOTSUPP where the file system refuses.
int ExchangeAt(int from_dir, const char* from, int to_dir, const char* to);

// Reserves the blocks of [0, size) (fallocate). EOPNOTSUPP where it cannot (the caller then
// only sets the size).
int Preallocate(int fd, uint64_t size);

// Hints, never part of the durability contract: start writing back dirty pages of a range
// without waiting (sync_file_range WRITE); drop the clean cached pages of a range
// (POSIX_FADV_DONTNEED); a file will be read sequentially (POSIX_FADV_SEQUENTIAL). n = 0: to
// the end of the file.
void StartWriteback(int fd, uint64_t offset, uint64_t n);
void DropCache(int fd, uint64_t offset, uint64_t n);
void AdviseSequential(int fd);

// Hint: [p, p + n) may be backed by huge pages (madvise MADV_HUGEPAGE; posix: nothing). p and n
// should be multiples of kHugePage. A buffer that large data streams through (a converter's
// write blocks) then costs fewer page walks and its O_DIRECT writes fewer page pins.
inline constexpr size_t kHugePage = 2u << 20;
void AdviseHugePages(void* p, size_t n);

// Writes of fd bypass the page cache (O_DIRECT) when on, or go through it again when off.
// While on, every pwrite's offset, length and buffer address must be multiples of
// kDirectAlign. EOPNOTSUPP where the platform cannot (posix; Darwin's port: F_NOCACHE), EINVAL
// where the file system refuses (tmpfs before Linux 6.6).
inline constexpr size_t kDirectAlign = 4096;
int SetDirectIO(int fd, bool on);

// Makes every file and directory entry on the file system holding fd durable (syncfs).
// ENOSYS where the platform cannot (the caller then syncs file by file).
int SyncFileSystem(int fd);

// Makes dst_fd a copy-on-write clone of src_fd's data (FICLONE). EOPNOTSUPP (or EXDEV,
// EINVAL, ENOTTY, EPERM) where the file system or the platform cannot.
int CloneFile(int src_fd, int dst_fd);
// Whether the file system holding dir_fd makes clones (btrfs, XFS).
bool ClonesFiles(int dir_fd);

// An exclusive lock on an open file, owned by that open file description (not the process),
// released when it is closed or by Unlock: two opens of the same file in one process conflict
// (linux: OFD fcntl locks; posix: flock). wait: block until it is free. 0, or EWOULDBLOCK when
// another description holds it (and !wait), or another errno.
int LockExclusive(int fd, bool wait);
int Unlock(int fd);
// Whether any other open file description holds the lock of fd's file. linux asks without
// taking it (F_OFD_GETLK); posix tries to take it on fd and releases it at once (so a racing
// LockExclusive may see it held for that instant).
bool IsLockedElsewhere(int fd);

// socket() close-on-exec (SOCK_CLOEXEC; posix: socket + fcntl, and SO_NOSIGPIPE where defined,
// as for an accepted one). The socket, or -errno.
int SocketCloexec(int domain, int type);
// accept() with the new socket close-on-exec (accept4 SOCK_CLOEXEC; posix: accept + fcntl).
// The socket, or -errno.
int AcceptCloexec(int listen_fd);
// send() that never raises SIGPIPE on a closed peer (MSG_NOSIGNAL; posix: SO_NOSIGPIPE where
// defined, else the caller must ignore SIGPIPE). The count, or -errno.
ssize_t SendNoSignal(int fd, const void* data, size_t n);

// What a running process was started as, for telling a user who holds a lock:
// "modelsync pull mlx-community/X" (arguments space-joined, argv[0] as its base name, at
// most 160 characters). "" when unknown (posix: always; linux: /proc/<pid>/cmdline).
std::string ProcessCommand(int pid);

}  // namespace modelsync::platform
