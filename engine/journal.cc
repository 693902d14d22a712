#include "engine/journal.h"

#include "storage/event_log.h"
#include "storage/root_lock.h"

namespace modelsync::engine {

namespace {
constexpr char kStateSnapshot[] = "state";
}  // namespace

struct Journal::Impl {
  std::unique_ptr<storage::RootLock> lock;  // kReadWrite only
  std::unique_ptr<storage::EventLog> log;   // null: read-only root without a log yet
};

Journal::~Journal() = default;

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& root, bool read_only) {
  return Open(root, read_only, JournalOptions{});
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& root, bool read_only,
                                               const JournalOptions& options) {
  std::unique_ptr<Journal> j(new Journal());
  j->impl_ = std::make_unique<Impl>();
  j->root_ = root;
  j->read_only_ = read_only;
  j->options_ = options;
  if (!j->options_.clock) j->options_.clock = SystemClock::Default();
  storage::EventLog::Options lo;
  if (options.initial_map_bytes) lo.initial_map_bytes = options.initial_map_bytes;
  if (read_only) {
    auto log = storage::EventLog::Open(root, storage::EventLog::Mode::kReadOnly, lo);
    if (!log.ok() && log.status().IsNotFound()) return j;  // nothing recorded yet
    if (!log.ok()) return log.status();
    j->impl_->log = std::move(log).value();
  } else {
    MS_ASSIGN_OR_RETURN(j->impl_->lock,
                        storage::RootLock::Acquire(root, options.wait_for_lock, options.on_wait,
                                                   options.cancel));
    MS_ASSIGN_OR_RETURN(j->impl_->log,
                        storage::EventLog::Open(root, storage::EventLog::Mode::kReadWrite, lo));
  }
  MS_RETURN_IF_ERROR(j->Load());
  return j;
}

Status Journal::Load() {
  storage::EventLog& log = *impl_->log;
  uint64_t last = log.LastSeq();
  auto snap = log.GetSnapshot(kStateSnapshot);
  if (!snap.ok()) {
    // A snapshot is derived data: a damaged one costs a full replay, never the root.
    snapshot_note_ = snap.status().message();
  } else if (snap->has_value()) {
    const storage::Snapshot& sn = **snap;
    snapshot_seq_ = sn.seq;
    State loaded;
    Status s = loaded.LoadSnapshotBytes(sn.bytes);
    if (!s.ok()) {
      snapshot_note_ = "state snapshot ignored: " + s.message();
    } else if (loaded.last_seq != sn.seq || sn.seq > last) {
      snapshot_note_ = "state snapshot ignored: it is at #" + std::to_string(sn.seq) +
                       " but the log ends at #" + std::to_string(last);
    } else {
      state_ = std::move(loaded);
      loaded_snapshot_seq_ = sn.seq;
    }
  }
  if (loaded_snapshot_seq_ == 0) state_ = State();
  return log.Replay(state_.last_seq + 1, [this](uint64_t seq, const v1::Event& e) {
    state_.Apply(seq, e);
    return Status::Ok();
  });
}

Result<std::vector<uint64_t>> Journal::Append(std::vector<v1::Event> events) {
  if (read_only_ || !impl_->log)
    return Status::InvalidArgument("the journal of " + root_ + " is open read-only");
  int64_t now = options_.clock->WallMs();
  for (auto& e : events)
    if (e.time_ms() == 0) e.set_time_ms(now);
  if (options_.on_commit) options_.on_commit(false, events.size());
  MS_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, impl_->log->Append(events));
  if (options_.on_commit) options_.on_commit(true, events.size());
  for (size_t i = 0; i < events.size(); ++i) state_.Apply(seqs[i], events[i]);
  if (options_.snapshot_every && state_.last_seq - snapshot_seq_ >= options_.snapshot_every) {
    // The events are committed; a failed snapshot only costs start-up time later.
    (void)WriteSnapshot();
  }
  return seqs;
}

Status Journal::WriteSnapshot() {
  if (read_only_ || !impl_->log)
    return Status::InvalidArgument("the journal of " + root_ + " is open read-only");
  MS_RETURN_IF_ERROR(
      impl_->log->PutSnapshot(kStateSnapshot, state_.last_seq, state_.ToSnapshotBytes()));
  snapshot_seq_ = state_.last_seq;
  return Status::Ok();
}

Status Journal::Refresh() {
  if (impl_->log && impl_->log->Replaced()) {
    // Another process rewrote the log (gc): this handle reads the old copy. Reopen.
    impl_->log.reset();
    snapshot_seq_ = loaded_snapshot_seq_ = 0;
    snapshot_note_.clear();
  }
  if (!impl_->log) {
    auto log = storage::EventLog::Open(root_, storage::EventLog::Mode::kReadOnly);
    if (!log.ok()) return log.status().IsNotFound() ? Status::Ok() : log.status();
    impl_->log = std::move(log).value();
    return Load();
  }
  return impl_->log->Replay(state_.last_seq + 1, [this](uint64_t seq, const v1::Event& e) {
    state_.Apply(seq, e);
    return Status::Ok();
  });
}

Status Journal::ForEachEvent(uint64_t from, const EventFn& fn, const GapFn& on_gap) {
  if (!impl_->log) return Status::Ok();
  return impl_->log->Replay(from, fn, on_gap);
}

Status Journal::ScanLog(const std::string& root, uint64_t from, const EventFn& fn,
                        const GapFn& on_gap) {
  auto log = storage::EventLog::Open(root, storage::EventLog::Mode::kReadOnly);
  if (!log.ok()) return log.status().IsNotFound() ? Status::Ok() : log.status();
  return (*log)->Replay(from, fn, on_gap);
}

Result<LogCompaction> Journal::CompactLog(const std::vector<uint64_t>& drop, bool rewrite) {
  if (read_only_ || !impl_->log)
    return Status::InvalidArgument("the journal of " + root_ + " is open read-only");
  storage::EventLog& log = *impl_->log;
  LogCompaction c;
  c.bytes_before = log.file_bytes();
  MS_RETURN_IF_ERROR(log.DropEvents(drop));
  c.events_dropped = drop.size();
  if (rewrite && !drop.empty()) {
    auto r = log.Rewrite();
    if (r.ok()) {
      c.rewritten = true;
    } else if (!log.is_open()) {
      return r.status();  // the old and the new log are both gone from this handle
    } else {
      c.rewrite_error = r.status().message();
    }
  }
  c.bytes_after = log.file_bytes();
  return c;
}

uint64_t Journal::LogFileBytes() const { return impl_->log ? impl_->log->file_bytes() : 0; }

}  // namespace modelsync::engine
