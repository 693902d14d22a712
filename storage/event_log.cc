#include "storage/event_log.h"

#include <sys/stat.h>

#include <mutex>
#include <set>

#include "base/fs.h"
#include "proto/codec.h"
#include "storage/lmdb_util.h"
#include "storage/record_format.h"

namespace modelsync::storage {

using internal::Cursor;
using internal::FromMdb;
using internal::Txn;
using internal::Val;
using internal::View;

namespace {

constexpr char kMetaFormatKey[] = "format_version";

// LMDB must not be opened twice in one process; track open logs by (dev, inode).
std::mutex g_open_mu;
std::set<std::pair<dev_t, ino_t>> g_open;

size_t RoundUp4k(size_t n) { return (n + 4095) / 4096 * 4096; }

std::string EventCorrupt(uint64_t seq, std::string_view what) {
  return "event #" + std::to_string(seq) + " is corrupt: " + std::string(what);
}

}  // namespace

std::string StateDir(const std::string& root) { return JoinPath(root, ".modelsync"); }
std::string LogDir(const std::string& root) { return JoinPath(StateDir(root), "log"); }

struct EventLog::Impl {
  std::string path;
  Mode mode = Mode::kReadOnly;
  Options options;
  MDB_env* env = nullptr;
  MDB_dbi events = 0, meta = 0, snapshots = 0;
  uint64_t last_seq = 0;
  size_t map_bytes = 0;
  int stale_readers = 0;
  std::pair<dev_t, ino_t> id{};
  RecordCodec writer_codec;
  std::string writer_payload, writer_record;  // scratch of Append/PutSnapshot

  ~Impl() {
    if (env) mdb_env_close(env);
    if (id != std::pair<dev_t, ino_t>{}) {
      std::lock_guard<std::mutex> g(g_open_mu);
      g_open.erase(id);
    }
  }

  Status Grow() {
    if (map_bytes >= options.max_map_bytes)
      return Status::NoSpace("the event log at " + path + " reached its size limit of " +
                             std::to_string(options.max_map_bytes) + " bytes");
    size_t next = std::min(options.max_map_bytes, map_bytes * 2);
    int rc = mdb_env_set_mapsize(env, next);
    if (rc != 0) return FromMdb(rc, "growing the event log map of " + path);
    map_bytes = next;
    return Status::Ok();
  }

  Status ReadLast(MDB_txn* txn, uint64_t* last) {
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

  Status OpenDbs(MDB_txn* txn, unsigned flags) {
    int rc = mdb_dbi_open(txn, "events", flags, &events);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", flags, &meta);
    if (rc == 0) rc = mdb_dbi_open(txn, "snapshots", flags, &snapshots);
    if (rc == MDB_NOTFOUND)
      return Status::NotFound("the event log at " + path + " is not initialized yet", rc);
    if (rc != 0) return FromMdb(rc, "opening the databases of " + path);
    return Status::Ok();
  }

  // Checks (and on a new kReadWrite log, writes) the format version.
  Status CheckFormat(MDB_txn* txn) {
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
      char buf[4] = {0, 0, 0, static_cast<char>(kLogFormatVersion)};
      MDB_val nv{4, buf};
      rc = mdb_put(txn, meta, &k, &nv, 0);
      if (rc != 0) return FromMdb(rc, "writing the format version of " + path);
      return Status::Ok();
    }
    if (rc != 0) return FromMdb(rc, "reading the meta table of " + path);
    if (v.mv_size != 4)
      return Status::Corruption("the format version in " + path + " is " +
                                std::to_string(v.mv_size) + " bytes long (expected 4)");
    const auto* p = static_cast<const unsigned char*>(v.mv_data);
    uint32_t version = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
    if (version > kLogFormatVersion || version == 0)
      return Status::Version(
          "the event log at " + path + " has format version " + std::to_string(version) +
          ", and this modelsync reads versions up to " + std::to_string(kLogFormatVersion) +
          "; upgrade modelsync to use this root");
    return Status::Ok();
  }

  // Walks events with seq >= from, checking every key and record, until fn sets *more to
  // false, fn fails, or the log ends.
  Status Scan(uint64_t from,
              const std::function<Status(uint64_t, const modelsync::v1::Event&, bool* more)>& fn) {
    if (from == 0) from = 1;
    Txn txn;
    int rc = txn.Begin(env, MDB_RDONLY);
    if (rc != 0) return FromMdb(rc, "reading " + path);
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
      if (seq != expect)
        return Status::Corruption(EventCorrupt(
            expect, seq < expect
                        ? "sequence number #" + std::to_string(seq) + " is out of order"
                        : "it is missing (the next record is #" + std::to_string(seq) + ")"));
      std::string_view payload;
      Status s = codec.Decode(View(k), View(v), proto::kMaxEventBytes, &payload);
      if (!s.ok()) return Status::Corruption(EventCorrupt(seq, s.message()), s.detail());
      s = proto::DecodeEvent(payload, &event);
      if (s.code() == StatusCode::kVersion)
        return Status::Version("event #" + std::to_string(seq) + ": " + s.message());
      if (!s.ok()) return Status::Corruption(EventCorrupt(seq, s.message()));
      MS_RETURN_IF_ERROR(fn(seq, event, &more));
      ++expect;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return FromMdb(rc, "reading " + path);
    return Status::Ok();
  }

  template <typename Body>
  Status WriteTxn(std::string_view what, Body body) {
    for (;;) {
      Txn txn;
      int rc = txn.Begin(env, 0);
      if (rc != 0) return FromMdb(rc, what);
      rc = body(txn.get());
      if (rc == 0) rc = txn.Commit();
      if (rc == MDB_MAP_FULL) {
        txn.Abort();
        MS_RETURN_IF_ERROR(Grow());
        continue;
      }
      if (rc == -1) return record_status;  // body failed with a Status
      if (rc != 0) return FromMdb(rc, what);
      return Status::Ok();
    }
  }
  Status record_status;
};

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventLog::~EventLog() = default;

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& root, Mode mode) {
  return Open(root, mode, Options{});
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& root, Mode mode,
                                                 const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = LogDir(root);
  impl->mode = mode;
  impl->options = options;
  const std::string& path = impl->path;
  struct stat st;
  if (mode == Mode::kReadWrite) {
    MS_RETURN_IF_ERROR(MakeDirs(path));
  } else if (::stat(JoinPath(path, "data.mdb").c_str(), &st) != 0) {
    return Status::NotFound("no event log at " + path + " (nothing has been recorded under " +
                            root + " yet)");
  }
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  {
    std::lock_guard<std::mutex> g(g_open_mu);
    if (!g_open.insert({st.st_dev, st.st_ino}).second)
      return Status::Locked("the event log at " + path +
                            " is already open in this process (LMDB allows one handle)");
  }
  impl->id = {st.st_dev, st.st_ino};

  int rc = mdb_env_create(&impl->env);
  if (rc != 0) return FromMdb(rc, "creating an LMDB environment");
  mdb_env_set_maxdbs(impl->env, 4);
  if (mode == Mode::kReadWrite) {
    size_t want = RoundUp4k(std::max<size_t>(options.initial_map_bytes, 4096 * 8));
    if (::stat(JoinPath(path, "data.mdb").c_str(), &st) == 0)
      want = std::max(want, RoundUp4k(static_cast<size_t>(st.st_size)));
    rc = mdb_env_set_mapsize(impl->env, want);
    if (rc != 0) return FromMdb(rc, "setting the map size of " + path);
  }
  unsigned flags = MDB_NOTLS | (mode == Mode::kReadOnly ? MDB_RDONLY : 0);
  rc = mdb_env_open(impl->env, path.c_str(), flags, 0644);
  if (rc != 0) return FromMdb(rc, "opening the event log at " + path);
  // Readers killed without cleanup leave slots that pin old pages (the file would only grow).
  int dead = 0;
  if (mdb_reader_check(impl->env, &dead) == 0) impl->stale_readers = dead;
  MDB_envinfo info;
  mdb_env_info(impl->env, &info);
  impl->map_bytes = info.me_mapsize;

  Txn txn;
  rc = txn.Begin(impl->env, mode == Mode::kReadOnly ? MDB_RDONLY : 0);
  if (rc != 0) return FromMdb(rc, "opening the event log at " + path);
  MS_RETURN_IF_ERROR(impl->OpenDbs(txn.get(), mode == Mode::kReadOnly ? 0 : MDB_CREATE));
  MS_RETURN_IF_ERROR(impl->CheckFormat(txn.get()));
  MS_RETURN_IF_ERROR(impl->ReadLast(txn.get(), &impl->last_seq));
  rc = txn.Commit();
  if (rc != 0) return FromMdb(rc, "initializing the event log at " + path);
  return std::unique_ptr<EventLog>(new EventLog(std::move(impl)));
}

Result<std::vector<uint64_t>> EventLog::Append(const std::vector<modelsync::v1::Event>& batch) {
  Impl& m = *impl_;
  if (m.mode != Mode::kReadWrite)
    return Status::InvalidArgument("the event log at " + m.path + " is open read-only");
  std::vector<uint64_t> seqs;
  if (batch.empty()) return seqs;
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
  return seqs;
}

Status EventLog::Read(uint64_t from, size_t limit,
                      std::vector<std::pair<uint64_t, modelsync::v1::Event>>* out) {
  if (limit == 0) return Status::Ok();
  size_t n = 0;
  return impl_->Scan(from, [&](uint64_t seq, const modelsync::v1::Event& e, bool* more) {
    out->emplace_back(seq, e);
    *more = ++n < limit;
    return Status::Ok();
  });
}

Status EventLog::Replay(uint64_t from,
                        const std::function<Status(uint64_t, const modelsync::v1::Event&)>& fold) {
  return impl_->Scan(
      from, [&](uint64_t seq, const modelsync::v1::Event& e, bool*) { return fold(seq, e); });
}

uint64_t EventLog::LastSeq() {
  Impl& m = *impl_;
  if (m.mode == Mode::kReadOnly) {
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

}  // namespace modelsync::storage
