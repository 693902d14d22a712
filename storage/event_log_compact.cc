// EventLog compaction: DropEvents (format version 2) and Rewrite (shrinking the file).
// See storage/LOG_FORMAT.md, "Compaction".
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/fs.h"
#include "base/platform.h"
#include "storage/event_log_impl.h"

namespace modelsync::storage {

using internal::FromMdb;
using internal::Txn;
using internal::Val;

namespace {

// Removes dir and the plain files in it (an LMDB directory holds nothing else). A symlink
// at dir is removed itself; nothing it points to is touched.
Status RemoveFlatDir(const std::string& dir) {
  struct stat lst;
  if (::lstat(dir.c_str(), &lst) != 0)
    return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, "lstat " + dir);
  if (!S_ISDIR(lst.st_mode)) {
    if (::unlink(dir.c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "removing " + dir);
    return Status::Ok();
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, "opendir " + dir);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Status::FromErrno(errno, "opendir " + dir);
  }
  Status s;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string p = JoinPath(dir, name);
    if (::unlinkat(::dirfd(d), name.c_str(), 0) != 0 && errno != ENOENT && s.ok())
      s = Status::FromErrno(errno, "removing " + p);
  }
  ::closedir(d);
  if (s.ok() && ::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    s = Status::FromErrno(errno, "removing " + dir);
  return s;
}

uint64_t FileBytes(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Copies every record of the named databases of from into a new environment in dir,
// in key order with MDB_APPEND: leaf pages come out full (MDB_CP_COMPACT would only omit
// free pages, keeping the holes DropEvents leaves inside pages). Values are copied as they
// are (their checksums bind them to their keys, which do not change). Durable on return.
Status CopyPacked(MDB_env* from, const std::string& dir, size_t map_bytes) {
  static const char* const kDbs[] = {"events", "meta", "snapshots"};
  MDB_env* to = nullptr;
  int rc = mdb_env_create(&to);
  if (rc != 0) return FromMdb(rc, "creating an LMDB environment");
  struct EnvCloser {
    MDB_env* e;
    ~EnvCloser() { mdb_env_close(e); }
  } closer{to};
  mdb_env_set_maxdbs(to, 4);
  rc = mdb_env_set_mapsize(to, map_bytes);
  if (rc == 0) rc = mdb_env_open(to, dir.c_str(), MDB_NOSYNC | MDB_NOTLS, 0644);
  if (rc != 0) return FromMdb(rc, "creating the compact copy in " + dir);
  Txn rtxn;
  rc = rtxn.Begin(from, MDB_RDONLY);
  if (rc != 0) return FromMdb(rc, "reading the event log for its copy");
  for (const char* name : kDbs) {
    MDB_dbi src;
    rc = mdb_dbi_open(rtxn.get(), name, 0, &src);
    if (rc != 0) return FromMdb(rc, std::string("opening database ") + name);
    internal::Cursor c;
    rc = c.Open(rtxn.get(), src);
    if (rc != 0) return FromMdb(rc, "reading the event log for its copy");
    MDB_val k, v;
    rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST);
    // Write transactions of at most 20,000 records keep the dirty page list small.
    while (rc == 0) {
      Txn wtxn;
      int wrc = wtxn.Begin(to, 0);
      MDB_dbi dst;
      if (wrc == 0) wrc = mdb_dbi_open(wtxn.get(), name, MDB_CREATE, &dst);
      for (int n = 0; wrc == 0 && rc == 0 && n < 20000; ++n) {
        wrc = mdb_put(wtxn.get(), dst, &k, &v, MDB_APPEND);
        if (wrc == 0) rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT);
      }
      if (wrc == 0) wrc = wtxn.Commit();
      if (wrc != 0) return FromMdb(wrc, "writing the compact copy in " + dir);
    }
    if (rc != MDB_NOTFOUND) return FromMdb(rc, "reading the event log for its copy");
    {  // (again) so that an empty database exists in the copy too
      Txn wtxn;
      MDB_dbi dst;
      int wrc = wtxn.Begin(to, 0);
      if (wrc == 0) wrc = mdb_dbi_open(wtxn.get(), name, MDB_CREATE, &dst);
      if (wrc == 0) wrc = wtxn.Commit();
      if (wrc != 0) return FromMdb(wrc, "writing the compact copy in " + dir);
    }
  }
  rc = mdb_env_sync(to, 1);
  if (rc != 0) return FromMdb(rc, "syncing the compact copy in " + dir);
  return Status::Ok();
}

}  // namespace

Status EventLog::DropEvents(const std::vector<uint64_t>& seqs) {
  Impl& m = *impl_;
  if (m.mode != Mode::kReadWrite)
    return Status::InvalidArgument("the event log at " + m.path + " is open read-only");
  if (seqs.empty()) return Status::Ok();
  MS_RETURN_IF_ERROR(m.Usable());
  for (size_t i = 1; i < seqs.size(); ++i)
    if (seqs[i] <= seqs[i - 1])
      return Status::InvalidArgument("events to drop must be ascending without duplicates");
  SeqRuns add;
  for (uint64_t seq : seqs) add.Add(seq, seq);
  Status s = m.WriteTxn("compacting " + m.path, [&](MDB_txn* txn) -> int {
    uint64_t last = 0;
    m.record_status = m.ReadLast(txn, &last);
    if (!m.record_status.ok()) return -1;
    if (seqs.back() >= last || seqs.front() == 0) {
      m.record_status =
          Status::InvalidArgument("event #" + std::to_string(seqs.back()) +
                                  " cannot be dropped: the last event of the log always stays");
      return -1;
    }
    SeqRuns runs;
    m.record_status = m.ReadCompacted(txn, &runs);
    if (!m.record_status.ok()) return -1;
    char kb[8];
    for (uint64_t seq : seqs) {
      PutSeqKey(seq, kb);
      MDB_val k{8, kb};
      int rc = mdb_del(txn, m.events, &k, nullptr);
      if (rc == MDB_NOTFOUND) {
        m.record_status = Status::InvalidArgument("event #" + std::to_string(seq) +
                                                  " cannot be dropped: it is not in the log");
        return -1;
      }
      if (rc != 0) return rc;
    }
    runs.Add(add);
    m.writer_codec.Encode(kMetaCompactedKey, runs.Encode(), &m.writer_record);
    MDB_val k = Val(kMetaCompactedKey), v = Val(m.writer_record);
    int rc = mdb_put(txn, m.meta, &k, &v, 0);
    if (rc != 0) return rc;
    char buf[4] = {0, 0, 0, 2};
    MDB_val fk = Val(kMetaFormatKey), fv{4, buf};
    return mdb_put(txn, m.meta, &fk, &fv, 0);
  });
  if (s.ok()) m.format_version = 2;
  return s;
}

Result<SeqRuns> EventLog::Compacted() {
  Impl& m = *impl_;
  MS_RETURN_IF_ERROR(m.Usable());
  Txn txn;
  int rc = txn.Begin(m.env, MDB_RDONLY);
  if (rc != 0) return FromMdb(rc, "reading " + m.path);
  SeqRuns runs;
  MS_RETURN_IF_ERROR(m.ReadCompacted(txn.get(), &runs));
  return runs;
}

std::string OldLogDir(const std::string& log_dir) { return log_dir + ".old"; }

Status RecoverRewrite(const std::string& log_dir) {
  const std::string old = OldLogDir(log_dir);
  struct stat st;
  if (::lstat(old.c_str(), &st) != 0)
    return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, "stat " + old);
  const std::string parent = DirName(log_dir);
  if (::lstat(log_dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "stat " + log_dir);
    // Killed between the two renames: the old log is whole (the copy in .compact may be
    // too, but the next Rewrite simply makes it again).
    if (::rename(old.c_str(), log_dir.c_str()) != 0)
      return Status::FromErrno(errno, "moving the event log back from " + old +
                                          " (a rewrite was interrupted)");
    return FsyncDir(parent);
  }
  // Killed after the copy was moved in: make that durable before the old log goes.
  MS_RETURN_IF_ERROR(FsyncDir(parent));
  return RemoveFlatDir(old);
}

Result<RewriteReport> EventLog::Rewrite() {
  Impl& m = *impl_;
  if (m.mode != Mode::kReadWrite)
    return Status::InvalidArgument("the event log at " + m.path + " is open read-only");
  MS_RETURN_IF_ERROR(m.Usable());
  // A log that is a symlink (moved to another disk by its owner) is never swapped: the
  // exchange would move the link, not the log, and the old log's directory would be the
  // link's target. The dropped events are gone all the same; only the file is not shrunk.
  struct stat lst;
  if (::lstat(m.path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
    return Status::InvalidArgument("the event log " + m.path +
                                   " is a symlink, so it is not rewritten (nothing outside the "
                                   "root is touched; move the log back to shrink its file)");
  const std::string tmp = m.path + ".compact";
  const std::string parent = DirName(m.path);
  RewriteReport report;
  report.bytes_before = FileBytes(JoinPath(m.path, "data.mdb"));
  // A leftover of a crashed rewrite holds either a partial copy or an old log: never needed.
  MS_RETURN_IF_ERROR(RemoveFlatDir(tmp));
  if (::mkdir(tmp.c_str(), 0755) != 0) return Status::FromErrno(errno, "creating " + tmp);
  m.Step("copying");
  const std::string copy = JoinPath(tmp, "data.mdb");
  Status s = CopyPacked(m.env, tmp, std::max<size_t>(m.map_bytes, 2 * report.bytes_before));
  // The copy's lock file is not needed (a fresh one is made at the next open).
  if (s.ok() && ::unlink(JoinPath(tmp, "lock.mdb").c_str()) != 0 && errno != ENOENT)
    s = Status::FromErrno(errno, "removing " + JoinPath(tmp, "lock.mdb"));
  if (s.ok()) s = FsyncDir(tmp);
  if (!s.ok()) {
    (void)RemoveFlatDir(tmp);
    return s;
  }
  report.bytes_after = FileBytes(copy);
  m.Step("copied");
  m.CloseEnv();
  m.Step("closed");
  std::string aside = tmp;  // where the old log is once the copy is in place
  int e = m.options.rename_swap
              ? ENOSYS
              : platform::ExchangeAt(AT_FDCWD, tmp.c_str(), AT_FDCWD, m.path.c_str());
  if (e == ENOSYS || e == EINVAL || e == EOPNOTSUPP) {
    // No atomic exchange (the posix build, some FUSE and NFS): two renames. Between them the
    // whole old log is only at <path>.old; readers open it there and the next writer's Open
    // moves it back (RecoverRewrite).
    aside = OldLogDir(m.path);
    MS_RETURN_IF_ERROR(RemoveFlatDir(aside));  // none is left while a writer has the log open
    e = ::rename(m.path.c_str(), aside.c_str()) == 0 ? 0 : errno;
    if (e == 0) {
      m.Step("set-aside");
      if (::rename(tmp.c_str(), m.path.c_str()) != 0) {
        e = errno;
        (void)::rename(aside.c_str(), m.path.c_str());  // else the next Open moves it back
      }
    }
  }
  if (e != 0) {
    s = Status::FromErrno(e, "swapping " + tmp + " and " + m.path +
                                 " (the log was not shrunk)");
    (void)RemoveFlatDir(tmp);
    Status r = m.OpenEnv();
    return r.ok() ? s : r.With("reopening after a failed rewrite");
  }
  m.Step("exchanged");
  // Durable before anything is appended to the new log (else power loss could undo the swap
  // under committed events).
  s = FsyncDir(parent);
  m.Step("synced");
  if (s.ok()) {
    (void)RemoveFlatDir(aside);  // the old log; a leftover is removed by the next Rewrite/Open
    m.Step("removed");
  }
  Status r = m.OpenEnv();
  if (!r.ok()) return r.With("reopening the rewritten event log");
  if (!s.ok()) return s;
  return report;
}

}  // namespace modelsync::storage
