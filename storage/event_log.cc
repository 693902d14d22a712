#include "storage/event_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <mutex>
#include <set>

#include "base/fs.h"
#include "proto/codec.h"
#include "storage/event_log_impl.h"

namespace modelsync::storage {

using internal::Cursor;
using internal::FromMdb;
using internal::Txn;
using internal::Val;
using internal::View;

namespace {

// LMDB must not be opened twice in one process; track open logs by (dev, inode).
std::mutex g_open_mu;
std::set<std::pair<dev_t, ino_t>> g_open;

size_t RoundUp4k(size_t n) { return (n + 4095) / 4096 * 4096; }

}  // namespace

std::string EventCorrupt(uint64_t seq, std::string_view what) {
  return "event #" + std::to_string(seq) + " is corrupt: " + std::string(what);
}

std::string StateDir(const std::string& root) { return JoinPath(root, ".modelsync"); }
std::string LogDir(const std::string& root) { return JoinPath(StateDir(root), "log"); }

void EventLog::Impl::CloseEnv() {
  if (env) mdb_env_close(env);
  env = nullptr;
  if (id != std::pair<dev_t, ino_t>{}) {
    std::lock_guard<std::mutex> g(g_open_mu);
    g_open.erase(id);
  }
  id = {};
}

Status EventLog::Impl::Grow() {
  if (map_bytes >= options.max_map_bytes)
    return Status::NoSpace("the event log at " + path + " reached its size limit of " +
                           std::to_string(options.max_map_bytes) + " bytes");
  size_t next = std::min(options.max_map_bytes, map_bytes * 2);
  int rc = mdb_env_set_mapsize(env, next);
  if (rc != 0) return FromMdb(rc, "growing the event log map of " + path);
  map_bytes = next;
  return Status::Ok();
}

Status EventLog::Impl::ReadLast(MDB_txn* txn, uint64_t* last) {
  Cursor c;
  int rc = c.Open(txn, events);
  if (rc != 0) return FromMdb(rc, "reading " + path);
  MDB_val k, v;
  rc = mdb_cursor_get(c.get(), &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) {
    *last = 0;
    return Status::Ok();
  }
  if (rc != 0) return FromMdb(rc, "reading " + path);
  if (k.mv_size != 8)
    return Status::Corruption("the last event of " + path + " has a key of " +
                              std::to_string(k.mv_size) + " bytes (expected 8)");
  *last = ParseSeqKey(k.mv_data);
  return Status::Ok();
}

Status EventLog::Impl::OpenDbs(MDB_txn* txn, unsigned flags) {
  int rc = mdb_dbi_open(txn, "events", flags, &events);
  if (rc == 0) rc = mdb_dbi_open(txn, "meta", flags, &meta);
  if (rc == 0) rc = mdb_dbi_open(txn, "snapshots", flags, &snapshots);
  if (rc == MDB_NOTFOUND)
    return Status::NotFound("the event log at " + path + " is not initialized yet", rc);
  if (rc != 0) return FromMdb(rc, "opening the databases of " + path);
  return Status::Ok();
}

// Checks (and on a new kReadWrite log, writes) the format version.
Status EventLog::Impl::CheckFormat(MDB_txn* txn) {
  MDB_val k = Val(kMetaFormatKey), v;
  int rc = mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    uint64_t last = 0;
    MS_RETURN_IF_ERROR(ReadLast(txn, &last));
    if (last != 0)
      return Status::Corruption("the event log at " + path +
                                " has events but no format version in its meta table");
    if (mode == Mode::kReadOnly)
      return Status::NotFound("the event log at " + path + " is not initialized yet");
    char buf[4] = {0, 0, 0, static_cast<char>(kLogFormatCreated)};
    MDB_val nv{4, buf};
    rc = mdb_put(txn, meta, &k, &nv, 0);
    if (rc != 0) return FromMdb(rc, "writing the format version of " + path);
    format_version = kLogFormatCreated;
    return Status::Ok();
  }
  if (rc != 0) return FromMdb(rc, "reading the meta table of " + path);
  if (v.mv_size != 4)
    return Status::Corruption("the format version in " + path + " is " + std::to_string(v.mv_size) +
                              " bytes long (expected 4)");
  const auto* p = static_cast<const unsigned char*>(v.mv_data);
  uint32_t version = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
  if (version > kLogFormatVersion || version == 0)
    return Status::Version("the event log at " + path + " has format version " +
                           std::to_string(version) + ", and this modelsync reads versions up to " +
                           std::to_string(kLogFormatVersion) +
                           "; upgrade modelsync to use this root");
  format_version = version;
  return Status::Ok();
}

Status EventLog::Impl::ReadCompacted(MDB_txn* txn, SeqRuns* out) {
  *out = SeqRuns();
  MDB_val k = Val(kMetaCompactedKey), v;
  int rc = mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc != 0) return FromMdb(rc, "reading the meta table of " + path);
  RecordCodec codec;
  std::string_view payload;
  Status s = codec.Decode(kMetaCompactedKey, View(v), kMaxCompactedBytes, &payload);
  if (s.ok()) s = SeqRuns::Decode(payload, out);
  if (!s.ok())
    return Status::Corruption("the record of compacted events in " + path +
                              " is corrupt: " + s.message());
  return Status::Ok();
}

// Walks events with seq >= from, checking every key and record, until fn sets *more to
// false, fn fails, or the log ends. A missing seq is accepted only when meta "compacted"
// lists it; an event that is present although listed there is corruption too.
Status EventLog::Impl::Scan(uint64_t from, const ScanFn& fn, const GapFn* on_gap) {
  MS_RETURN_IF_ERROR(Usable());
  if (from == 0) from = 1;
  Txn txn;
  int rc = txn.Begin(env, MDB_RDONLY);
  if (rc != 0) return FromMdb(rc, "reading " + path);
  SeqRuns compacted;
  // A damaged record matters only where a gap needs it: the events before are still read.
  Status compacted_status = ReadCompacted(txn.get(), &compacted);
  Cursor c;
  rc = c.Open(txn.get(), events);
  if (rc != 0) return FromMdb(rc, "reading " + path);
  char kb[8];
  PutSeqKey(from, kb);
  MDB_val k{8, kb}, v;
  uint64_t expect = from;
  bool more = true;
  RecordCodec codec;  // per scan, so scans on several threads share nothing
  modelsync::v1::Event event;
  for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_SET_RANGE); rc == 0 && more;
       rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT)) {
    if (k.mv_size != 8)
      return Status::Corruption(EventCorrupt(
          expect, "its key is " + std::to_string(k.mv_size) + " bytes long (expected 8)"));
    uint64_t seq = ParseSeqKey(k.mv_data);
    if (seq < expect)
      return Status::Corruption(
          EventCorrupt(expect, "sequence number #" + std::to_string(seq) + " is out of order"));
    if (seq > expect) {
      std::string missing = "it is missing (the next record is #" + std::to_string(seq) + ")";
      if (!compacted_status.ok())
        return Status::Corruption(
            EventCorrupt(expect, missing + ", and " + compacted_status.message()));
      if (!compacted.Covers(expect, seq - 1))
        return Status::Corruption(EventCorrupt(
            expect, missing + (compacted.empty() ? "" : " and no compaction removed it")));
      if (on_gap) MS_RETURN_IF_ERROR((*on_gap)(expect, seq - 1));
    }
    if (compacted.Contains(seq))
      return Status::Corruption(
          EventCorrupt(seq, "it is present although the log's meta says compaction removed it"));
    std::string_view payload;
    Status s = codec.Decode(View(k), View(v), proto::kMaxEventBytes, &payload);
    if (!s.ok()) return Status::Corruption(EventCorrupt(seq, s.message()), s.detail());
    s = proto::DecodeEvent(payload, &event);
    if (s.code() == StatusCode::kVersion)
      return Status::Version("event #" + std::to_string(seq) + ": " + s.message());
    if (!s.ok()) return Status::Corruption(EventCorrupt(seq, s.message()));
    MS_RETURN_IF_ERROR(fn(seq, event, &more));
    expect = seq + 1;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return FromMdb(rc, "reading " + path);
  return Status::Ok();
}

Status EventLog::Impl::OpenEnvOnce(bool* swapped) {
  *swapped = false;
  struct stat st;
  dir = path;
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    // Between the two renames of a rewrite without the atomic exchange, the log is whole at
    // <path>.old only: a reader reads it there (a writer's Open has moved it back already).
    if (e != ENOENT || mode != Mode::kReadOnly || ::stat(OldLogDir(path).c_str(), &st) != 0)
      return Status::FromErrno(e, "stat " + path);
    dir = OldLogDir(path);
  }
  {
    std::lock_guard<std::mutex> g(g_open_mu);
    if (!g_open.insert({st.st_dev, st.st_ino}).second)
      return Status::Locked("the event log at " + path +
                            " is already open in this process (LMDB allows one handle)");
  }
  id = {st.st_dev, st.st_ino};
  int rc = mdb_env_create(&env);
  if (rc != 0) {
    env = nullptr;
    return FromMdb(rc, "creating an LMDB environment");
  }
  mdb_env_set_maxdbs(env, 4);
  if (mode == Mode::kReadWrite) {
    size_t want = RoundUp4k(std::max<size_t>(options.initial_map_bytes, 4096 * 8));
    if (::stat(JoinPath(path, "data.mdb").c_str(), &st) == 0)
      want = std::max(want, RoundUp4k(static_cast<size_t>(st.st_size)));
    rc = mdb_env_set_mapsize(env, want);
    if (rc != 0) return FromMdb(rc, "setting the map size of " + path);
  }
  unsigned flags = MDB_NOTLS | (mode == Mode::kReadOnly ? MDB_RDONLY : 0);
  rc = mdb_env_open(env, dir.c_str(), flags, 0644);
  if (mode == Mode::kReadOnly && (rc == EACCES || rc == EROFS)) {
    // A root this user may read but not write (another user's, a read-only mount): LMDB
    // cannot write its lock file, so read without it. Caveat (LMDB's MDB_NOLOCK): a writer
    // running at the same time is not coordinated with; a read it disturbs fails its record
    // checksums (reported as such) instead of returning wrong facts. Documented in
    // storage/LAYOUT.md.
    mdb_env_close(env);
    env = nullptr;
    rc = mdb_env_create(&env);
    if (rc != 0) {
      env = nullptr;
      return FromMdb(rc, "creating an LMDB environment");
    }
    mdb_env_set_maxdbs(env, 4);
    rc = mdb_env_open(env, dir.c_str(), flags | MDB_NOLOCK, 0644);
    no_lock = rc == 0;
  }
  if (rc != 0) return FromMdb(rc, "opening the event log at " + path);
  // A rewrite may have swapped the directory between LMDB's opens of lock.mdb and data.mdb
  // (or, without the exchange, moved it away or back).
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "stat " + dir);
    *swapped = true;
    return Status::Ok();
  }
  if (std::pair<dev_t, ino_t>{st.st_dev, st.st_ino} != id) {
    *swapped = true;
    return Status::Ok();
  }
  // Readers killed without cleanup leave slots that pin old pages (the file would only grow).
  int dead = 0;
  if (mdb_reader_check(env, &dead) == 0) stale_readers = dead;
  MDB_envinfo info;
  mdb_env_info(env, &info);
  map_bytes = info.me_mapsize;

  Txn txn;
  rc = txn.Begin(env, mode == Mode::kReadOnly ? MDB_RDONLY : 0);
  if (rc != 0) return FromMdb(rc, "opening the event log at " + path);
  MS_RETURN_IF_ERROR(OpenDbs(txn.get(), mode == Mode::kReadOnly ? 0 : MDB_CREATE));
  MS_RETURN_IF_ERROR(CheckFormat(txn.get()));
  MS_RETURN_IF_ERROR(ReadLast(txn.get(), &last_seq));
  rc = txn.Commit();
  if (rc != 0) return FromMdb(rc, "initializing the event log at " + path);
  return Status::Ok();
}

Status EventLog::Impl::OpenEnv() {
  for (int attempt = 0;; ++attempt) {
    bool swapped = false;
    Status s = OpenEnvOnce(&swapped);
    if (!s.ok()) {
      CloseEnv();
      return s;
    }
    if (!swapped) return Status::Ok();
    CloseEnv();
    if (attempt == 5)
      return Status::IOError("the event log at " + path +
                             " kept being replaced while it was opened; retry")
          .Advised();
  }
}

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventLog::~EventLog() = default;

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& root, Mode mode) {
  return Open(root, mode, Options{});
}

// <root>/.modelsync/log.tail: the sequence number of the last committed event, as text,
// written (not fsynced) after every commit, outside the LMDB environment. A log whose last
// event is older than it has lost committed events: LMDB fell back to its older meta page
// (one damaged byte in the newer one's transaction id does it) or data.mdb was replaced by
// an older copy. It can only be behind the log (a crash between commit and write), never
// ahead, unless the log lost commits. storage/LOG_FORMAT.md "The tail record".
static std::string TailPath(const std::string& log_dir) { return log_dir + ".tail"; }

static uint64_t ReadTail(const std::string& log_dir) {
  int fd = ::open(TailPath(log_dir).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  ::close(fd);
  return n > 0 ? std::strtoull(buf, nullptr, 10) : 0;
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& root, Mode mode,
                                                 const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = LogDir(root);
  impl->mode = mode;
  impl->options = options;
  const std::string& path = impl->path;
  // A writer first finishes a rewrite a crash interrupted (else it would start a new, empty
  // log beside the old one set aside).
  if (mode == Mode::kReadWrite) MS_RETURN_IF_ERROR(RecoverRewrite(path));
  struct stat st;
  const bool existed = ::stat(JoinPath(path, "data.mdb").c_str(), &st) == 0 ||
                       (mode == Mode::kReadOnly &&
                        ::stat(JoinPath(OldLogDir(path), "data.mdb").c_str(), &st) == 0);
  if (mode == Mode::kReadWrite) {
    MS_RETURN_IF_ERROR(MakeDirs(path));
    // A new log (the old one deleted to start over) owes nothing to an old tail.
    if (!existed) (void)::unlink(TailPath(path).c_str());
  } else if (!existed) {
    return Status::NotFound("no event log at " + path + " (nothing has been recorded under " +
                            root + " yet)");
  }
  MS_RETURN_IF_ERROR(impl->OpenEnv());
  // A new log's files: their entries in the log directory are made durable before any commit
  // relies on them (LMDB syncs the files, never the directory).
  if (mode == Mode::kReadWrite && !existed) MS_RETURN_IF_ERROR(FsyncDir(path));
  uint64_t tail = existed ? ReadTail(path) : 0;
  if (tail > impl->last_seq)
    return Status::Corruption(
        "the event log at " + path + " ends at event #" + std::to_string(impl->last_seq) +
        " but event #" + std::to_string(tail) +
        " was committed (" + TailPath(path) +
        "): the log lost its last commits (a damaged byte in LMDB's meta page, or data.mdb "
        "replaced by an older copy). If you restored an older copy on purpose, delete " +
        TailPath(path) + " to accept it");
  if (mode == Mode::kReadWrite) {
    impl->tail_fd = ::open(TailPath(path).c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (impl->tail_fd < 0) return Status::FromErrno(errno, "opening " + TailPath(path));
  }
  return std::unique_ptr<EventLog>(new EventLog(std::move(impl)));
}

Result<std::vector<uint64_t>> EventLog::Append(const std::vector<modelsync::v1::Event>& batch) {
  Impl& m = *impl_;
  if (m.mode != Mode::kReadWrite)
    return Status::InvalidArgument("the event log at " + m.path + " is open read-only");
  std::vector<uint64_t> seqs;
  MS_RETURN_IF_ERROR(m.Usable());
  if (batch.empty()) return seqs;
  // A record this binary could not read back is never written (it would make every later
  // open report the log corrupt): refused before the transaction, nothing changes.
  for (const auto& e : batch)
    if (e.ByteSizeLong() > proto::kMaxEventBytes)
      return Status::InvalidArgument(
          std::string(proto::EventKindName(e)) + " event of " + std::to_string(e.ByteSizeLong()) +
          " bytes is over the log's cap of " + std::to_string(proto::kMaxEventBytes) +
          " bytes per event; nothing was written");
  uint64_t last = 0;
  Status s = m.WriteTxn("appending to " + m.path, [&](MDB_txn* txn) -> int {
    m.record_status = m.ReadLast(txn, &last);
    if (!m.record_status.ok()) return -1;
    Cursor c;
    int rc = c.Open(txn, m.events);
    if (rc != 0) return rc;
    char kb[8];
    for (size_t i = 0; i < batch.size(); ++i) {
      PutSeqKey(last + 1 + i, kb);
      m.writer_payload.clear();
      batch[i].SerializeToString(&m.writer_payload);
      m.writer_codec.Encode(std::string_view(kb, 8), m.writer_payload, &m.writer_record);
      MDB_val k{8, kb}, v = Val(m.writer_record);
      rc = mdb_cursor_put(c.get(), &k, &v, MDB_APPEND);
      if (rc != 0) return rc;
    }
    return 0;
  });
  if (!s.ok()) return s;
  seqs.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) seqs.push_back(last + 1 + i);
  m.last_seq = last + batch.size();
  if (m.tail_fd >= 0) {
    std::string t = std::to_string(m.last_seq) + "\n";
    // Best effort: a failed write only weakens the rollback check, it loses nothing.
    if (::pwrite(m.tail_fd, t.data(), t.size(), 0) == static_cast<ssize_t>(t.size()))
      (void)::ftruncate(m.tail_fd, static_cast<off_t>(t.size()));
  }
  return seqs;
}

Status EventLog::Read(uint64_t from, size_t limit,
                      std::vector<std::pair<uint64_t, modelsync::v1::Event>>* out) {
  if (limit == 0) return Status::Ok();
  size_t n = 0;
  return impl_->Scan(
      from,
      [&](uint64_t seq, const modelsync::v1::Event& e, bool* more) {
        out->emplace_back(seq, e);
        *more = ++n < limit;
        return Status::Ok();
      },
      nullptr);
}

Status EventLog::Replay(uint64_t from,
                        const std::function<Status(uint64_t, const modelsync::v1::Event&)>& fold) {
  return impl_->Scan(
      from, [&](uint64_t seq, const modelsync::v1::Event& e, bool*) { return fold(seq, e); },
      nullptr);
}

Status EventLog::Replay(uint64_t from,
                        const std::function<Status(uint64_t, const modelsync::v1::Event&)>& fold,
                        const GapFn& on_gap) {
  return impl_->Scan(
      from, [&](uint64_t seq, const modelsync::v1::Event& e, bool*) { return fold(seq, e); },
      on_gap ? &on_gap : nullptr);
}

uint64_t EventLog::LastSeq() {
  Impl& m = *impl_;
  if (m.mode == Mode::kReadOnly && m.env) {
    Txn txn;
    if (txn.Begin(m.env, MDB_RDONLY) == 0) {
      uint64_t last = 0;
      if (m.ReadLast(txn.get(), &last).ok()) m.last_seq = last;
    }
  }
  return m.last_seq;
}

Status EventLog::PutSnapshot(std::string_view name, uint64_t seq, std::string_view bytes) {
  Impl& m = *impl_;
  if (m.mode != Mode::kReadWrite)
    return Status::InvalidArgument("the event log at " + m.path + " is open read-only");
  if (name.empty()) return Status::InvalidArgument("a snapshot needs a name");
  MS_RETURN_IF_ERROR(m.Usable());
  if (bytes.size() + 8 > kMaxSnapshotBytes)
    return Status::InvalidArgument("snapshot '" + std::string(name) + "' is over the cap of " +
                                   std::to_string(kMaxSnapshotBytes) + " bytes");
  m.writer_payload.assign(SeqKey(seq));
  m.writer_payload.append(bytes);
  m.writer_codec.Encode(name, m.writer_payload, &m.writer_record);
  return m.WriteTxn("writing snapshot '" + std::string(name) + "' to " + m.path,
                    [&](MDB_txn* txn) -> int {
                      MDB_val k = Val(name), v = Val(m.writer_record);
                      return mdb_put(txn, m.snapshots, &k, &v, 0);
                    });
}

Result<std::optional<Snapshot>> EventLog::GetSnapshot(std::string_view name) {
  Impl& m = *impl_;
  MS_RETURN_IF_ERROR(m.Usable());
  Txn txn;
  int rc = txn.Begin(m.env, MDB_RDONLY);
  if (rc != 0) return FromMdb(rc, "reading " + m.path);
  MDB_val k = Val(name), v;
  rc = mdb_get(txn.get(), m.snapshots, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<Snapshot>();
  if (rc != 0) return FromMdb(rc, "reading snapshot '" + std::string(name) + "'");
  std::string_view payload;
  RecordCodec codec;  // own scratch: the result is copied out below
  Status s = codec.Decode(name, View(v), kMaxSnapshotBytes, &payload);
  if (s.ok() && payload.size() < 8) s = Status::Corruption("shorter than its sequence number");
  if (!s.ok())
    return Status::Corruption("snapshot '" + std::string(name) + "' in " + m.path +
                              " is corrupt: " + s.message());
  Snapshot snap;
  snap.seq = ParseSeqKey(payload.data());
  snap.bytes.assign(payload.substr(8));
  return std::optional<Snapshot>(std::move(snap));
}

const std::string& EventLog::path() const { return impl_->path; }
EventLog::Mode EventLog::mode() const { return impl_->mode; }
size_t EventLog::map_bytes() const { return impl_->map_bytes; }
int EventLog::stale_readers_cleared() const { return impl_->stale_readers; }
uint32_t EventLog::format_version() const { return impl_->format_version; }

uint64_t EventLog::file_bytes() const {
  struct stat st;
  if (::stat(JoinPath(impl_->path, "data.mdb").c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

bool EventLog::is_open() const { return impl_->env != nullptr; }

Status EventLog::Impl::Usable() const {
  if (env) return Status::Ok();
  return Status::IOError("the event log at " + path +
                         " could not be reopened after a rewrite; run the command again")
      .Advised();
}

bool EventLog::Replaced() const {
  struct stat st;
  if (::stat(impl_->path.c_str(), &st) != 0) return true;
  return std::pair<dev_t, ino_t>{st.st_dev, st.st_ino} != impl_->id;
}

}  // namespace modelsync::storage
