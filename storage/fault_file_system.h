// FaultFileSystem: a FileSystem wrapper for crash, power-loss and I/O-error tests
// (leveldb's db/fault_injection_test.cc FaultInjectionTestEnv is the model).
//
// It does these things, all in-process and deterministic:
//  1. Counts every side effect by kind (FsOp) and in total, in call order. Before each counted
//     op it calls the hook, if set, with the op's kind, its 1-based index over all kinds and
//     the path: a crash-point test forks, and the child `_exit`s in the hook at index i.
//  2. Fails chosen ops: the Nth op of a kind (or the Nth op overall) returns the given errno
//     as a Status without being performed; `persistent` fails that one and every later one
//     of the kind (a dead disk, a full disk that stays full). A failed File sync also LOSES
//     the file's unsynced ranges at once (they are overwritten as DropUnsynced would), the
//     way Linux drops dirty pages after a failed fsync: a later successful sync does not
//     bring them back, so code that "fsyncs again and trusts it" is caught.
//  3. Simulates power loss: DropUnsynced() reverts everything not made durable under the
//     contract in file_system.h:
//       - per file: bytes written (or size grown) since the last successful DataSync/Sync
//         are zeroed (LossMode::kZero) or filled with a garbage pattern (kGarbage), and the
//         file is truncated back to its size at the last sync;
//       - directory entries: creates, mkdirs, links, non-replacing renames and exchanges
//         whose directories were not all Sync()ed since are undone, newest first.
//     Limits (documented, not hidden): tracking is keyed by path, so data written under a
//     directory that was later renamed is not found again (skipped); a rename that replaced
//     an existing target, unlinks and rmdirs are treated as durable at once.
//     Call DropUnsynced() only when no handle is being used (the "process" is dead), or
//     after Freeze() (below).
//  4. Counts side effects made outside it in the same sequence: Tick(FsOp::kCommit, what)
//     for the event log's LMDB commits (the log is not behind FileSystem; its commits are
//     fsynced by LMDB, so a power loss never reverts them). Crash-point tests call it before
//     and after each commit (engine::PullInternalOptions::on_commit).
//  5. Freeze(): a power loss in a multi-threaded process. Called from the hook at the crash
//     point, it makes every later counted op (on any thread) block for good before it is
//     performed, and waits until no op that already passed its count is still running. The
//     caller then runs DropUnsynced() on a quiet file system and _exit()s.
//
//  6. FailReads(err): every File::PRead fails with err while it is set. Reads are not side
//     effects: they are never counted, so crash-point indices do not move.
//
// Thread safety: all methods may be called from any thread (one internal mutex); the hook
// runs without the mutex held.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/byte_range.h"
#include "storage/file_system.h"

namespace modelsync::storage {

enum class FsOp : int {
  kWrite = 0,  // File::PWrite
  kSync,       // File::DataSync, File::Sync, Dir::Sync
  kRename,     // Dir::Rename, Dir::Exchange
  kLink,       // Dir::Link
  kCreate,     // Dir::OpenFile with a create mode, Dir::MakeDir, Dir::Symlink
  kRemove,     // Dir::Unlink, Dir::RemoveDir, Dir::RemoveTree
  kAllocate,   // File::Allocate, File::Truncate
  kCommit,     // an event-log commit reported through Tick() (not a FileSystem call)
};
inline constexpr int kFsOpKinds = 8;
const char* FsOpName(FsOp op);

class FaultFileSystem final : public FileSystem {
 public:
  enum class LossMode { kZero, kGarbage };
  using Hook = std::function<void(FsOp op, uint64_t index, const std::string& path)>;

  // base must outlive this.
  explicit FaultFileSystem(FileSystem* base);
  ~FaultFileSystem() override;

  Result<std::unique_ptr<Dir>> OpenRoot(const std::string& path, bool create) override;
  Result<std::string> ResolvePath(const std::string& path, bool create) override;

  uint64_t Count(FsOp op) const;
  uint64_t TotalCount() const;
  void ResetCounts();

  // The nth (1-based, counted from the last ResetCounts) op of `op` fails with errno err.
  void FailNth(FsOp op, uint64_t nth, int err, bool persistent = false);
  // The nth op of any kind fails (persistent: every op from the nth on fails).
  void FailNthAny(uint64_t nth, int err, bool persistent = false);
  void ClearFaults();
  // Every File::PRead fails with errno err from now on (0: reads work again). Not counted.
  void FailReads(int err) { read_errno_.store(err); }
  int read_errno() const { return read_errno_.load(); }
  uint64_t InjectedCount() const;

  void SetHook(Hook hook);
  // Counts a side effect performed outside this file system (op is normally kCommit; `what`
  // is passed to the hook as the path) and runs the hook, like any counted op. Returns the
  // errno a FailNth/FailNthAny rule asks for (0: none); the caller decides what failing
  // means (an on_commit hook cannot fail a commit). Blocks for good after Freeze().
  int Tick(FsOp op, const std::string& what);
  // See 5. at the top. Call at most once, from a hook (never from inside an op); irreversible.
  void Freeze();
  bool frozen() const;
  // Operations held for good by the freeze (threads parked in one). A test knows a thread
  // that keeps writing has stopped once this counts it, without watching it for a while.
  uint64_t held() const;
  // Makes Dir::FreeBytes() report `bytes` (nullopt: the real value), for free-space checks.
  void SetFreeBytes(std::optional<uint64_t> bytes);
  std::optional<uint64_t> FakeFreeBytes() const;

  // Power loss; see the top of this file. Clears the tracking afterwards.
  Status DropUnsynced(LossMode mode = LossMode::kZero);
  // Forgets what is unsynced (as if everything had been synced).
  void ResetTracking();
  // Bytes currently written but not synced, over all tracked files.
  uint64_t UnsyncedBytes() const;

  // --- used by the wrapped handles (not for callers) ---
  // Counts op, runs the hook, and returns the errno to inject (0 = go ahead). Every Before()
  // must be followed by one After() when the op is over (performed or failed): Freeze()
  // waits for those. After Freeze() it blocks for good instead.
  int Before(FsOp op, const std::string& path);
  void After();
  void NoteFileOpened(const std::string& path, uint64_t size_now, bool created);
  void NoteWrite(const std::string& path, ByteRange r);
  void NoteResize(const std::string& path, uint64_t old_size, uint64_t new_size);
  // A successful sync: `covered` (the unsynced ranges when the sync began; nullptr = all)
  // are durable now, and the file's durable size is `size`.
  void NoteFileSynced(const std::string& path, uint64_t size, const RangeSet* covered = nullptr);
  RangeSet UnsyncedOf(const std::string& path) const;
  // A failed sync: lose the unsynced ranges now, through `file`.
  void LoseUnsynced(const std::string& path, File& file);
  enum class EntryOp { kCreateFile, kMakeDir, kLink, kRename, kExchange };
  void NoteEntry(EntryOp op, const std::string& dir_a, std::string name_a, const std::string& dir_b,
                 std::string name_b);
  void NoteDirSynced(const std::string& dir);

 private:
  // Parks the calling thread for good when frozen (counted in held_). mu_ is held.
  void HoldIfFrozen(std::unique_lock<std::mutex>& l);
  struct Track {
    uint64_t synced_size = UINT64_MAX;  // UINT64_MAX: unknown, never truncate
    RangeSet unsynced;
  };
  struct Entry {
    EntryOp op;
    std::string dir_a, name_a, dir_b, name_b;
    std::set<std::string> unsynced_dirs;
  };
  struct Rule {
    bool any;
    FsOp op;
    uint64_t nth;
    int err;
    bool persistent;
  };
  Status Overwrite(File& f, const Track& t, LossMode mode);

  FileSystem* base_;
  std::atomic<int> read_errno_{0};
  mutable std::mutex mu_;
  std::array<uint64_t, kFsOpKinds> counts_{};
  uint64_t total_ = 0;
  uint64_t injected_ = 0;
  std::vector<Rule> rules_;
  Hook hook_;
  std::optional<uint64_t> free_bytes_;
  std::map<std::string, Track> files_;
  std::vector<Entry> entries_;
  std::condition_variable cv_;
  bool frozen_ = false;
  uint64_t held_ = 0;
  int in_flight_ = 0;  // ops between Before() and After()
};

}  // namespace modelsync::storage
