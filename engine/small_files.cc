#include "engine/small_files.h"

#include <algorithm>
#include <set>
#include <utility>

#include "engine/materializer.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {

SmallFileWriter::SmallFileWriter(storage::BlobStore& blobs, std::function<void()> wake,
                                 std::function<void(Xfer*)> adopted, Materializer* tree)
    : blobs_(blobs),
      tree_(tree),
      wake_(std::move(wake)),
      adopted_hook_(std::move(adopted)),
      thread_([this] { Loop(); }) {}

SmallFileWriter::~SmallFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  room_cv_.notify_all();
  thread_.join();
}

void SmallFileWriter::Write(std::string content_id, std::string path, std::string bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  room_cv_.wait(lock, [&] { return queued_bytes_ <= kQueueBytes || stop_; });
  queued_bytes_ += bytes.size();
  Job job;
  job.content_id = std::move(content_id);
  job.path = std::move(path);
  job.bytes = std::move(bytes);
  jobs_.push_back(std::move(job));
  cv_.notify_one();
}

void SmallFileWriter::Adopt(std::vector<Xfer*> files, std::vector<std::string> content_ids) {
  if (files.empty()) return;
  Job job;
  job.files = std::move(files);
  job.ids = std::move(content_ids);
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.push_back(std::move(job));
  ++adoptions_;
  cv_.notify_one();
}

bool SmallFileWriter::Adopting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return adoptions_ > 0;
}

Status SmallFileWriter::TakeAdopted(std::vector<Xfer*>* files) {
  std::lock_guard<std::mutex> lock(mu_);
  files->insert(files->end(), adopted_.begin(), adopted_.end());
  adopted_.clear();
  error_taken_ = !error_.ok();
  return error_;
}

bool SmallFileWriter::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !jobs_.empty() || running_ || !adopted_.empty() || (!error_.ok() && !error_taken_);
}

void SmallFileWriter::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  room_cv_.wait(lock, [&] { return (jobs_.empty() && !running_ && !waking_) || stop_; });
}

Status SmallFileWriter::Write(const Job& job) {
  if (tree_) {
    // Under its own path in the new tree; where that cannot be (a name taken, reflinks),
    // as a temporary blob below.
    if (auto f = tree_->Stage(job.path); f.ok()) {
      staged_.emplace(job.content_id, job.path);
      return (*f)->PWrite(0, job.bytes).With(job.path);
    }
  }
  Status written = [&]() -> Status {
    // Made new and read-only at once (mode 0444; the handle that creates it may still
    // write it): a blob's mode, with no chmod, and the adoption does not reopen it.
    const std::string tmp = ".tmp-" + job.content_id;
    auto f = blobs_.dir().OpenFile(tmp, storage::OpenMode::kCreateExclusive, 0444);
    if (!f.ok()) {
      // A run that crashed after writing this content left its copy (read-only), or a
      // second path with the same bytes is written before the first is adopted: removed,
      // and made again.
      if (!blobs_.dir().Unlink(tmp).ok()) return f.status();
      f = blobs_.dir().OpenFile(tmp, storage::OpenMode::kCreateExclusive, 0444);
      if (!f.ok()) return f.status();
    }
    written_tmp_.insert(job.content_id);
    return (*f)->PWrite(0, job.bytes);
  }();
  return written.With(job.path);  // name the repo file too
}

Status SmallFileWriter::Run(const Job& job) {
  if (job.files.empty()) return Write(job);
  std::vector<std::pair<std::string, std::string>> names;  // (temporary name, id)
  std::vector<std::pair<std::string, std::string>> staged;  // (path, id)
  std::set<std::string> seen;
  for (const std::string& id : job.ids) {
    if (!seen.insert(id).second) continue;
    if (written_tmp_.erase(id)) names.push_back({".tmp-" + id, id});
    auto [from, to] = staged_.equal_range(id);
    for (auto it = from; it != to; ++it) staged.push_back({it->second, id});
    staged_.erase(from, to);
  }
  if (names.empty() && staged.empty()) return Status::Ok();
  // In path order: the tree's directories are opened one chain at a time (Materializer::DirOf),
  // so neighbours share theirs.
  std::sort(staged.begin(), staged.end());
  // Durable first (DESIGN invariant 2: a blob's name never comes before its bytes).
  bool per_file = false;
  MS_RETURN_IF_ERROR(blobs_.SyncBatch(blobs_.dir(), names, &per_file));
  if (per_file) {
    for (const auto& [path, id] : staged) MS_RETURN_IF_ERROR(tree_->SyncStaged(path));
  } else if (tree_) {
    tree_->NoteSynced();  // the tree's directories too: Materialize need not sync them again
  }
  MS_RETURN_IF_ERROR(blobs_.AdoptSynced(blobs_.dir(), names));
  for (const auto& [path, id] : staged) MS_RETURN_IF_ERROR(tree_->Publish(path, id));
  return blobs_.dir().Sync();
}

void SmallFileWriter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    running_ = true;
    const bool failed = !error_.ok();
    lock.unlock();
    Status s = failed ? Status::Ok() : Run(job);
    if (!failed && s.ok() && adopted_hook_)
      for (Xfer* x : job.files) adopted_hook_(x);
    const uint64_t freed = job.bytes.size();
    std::string().swap(job.bytes);
    lock.lock();
    queued_bytes_ -= freed;
    if (!s.ok() && error_.ok()) error_ = s;
    const bool adoption = !job.files.empty();
    if (adoption && !failed && s.ok())
      adopted_.insert(adopted_.end(), job.files.begin(), job.files.end());
    // The job is over before the wake: a control thread woken by it must find Pending()
    // false once it took the files, or it would wait for a wake that never comes.
    running_ = false;
    if (adoption) --adoptions_;
    if (adoption || !s.ok()) {
      waking_ = true;
      lock.unlock();
      wake_();  // outside mu_: the control thread takes its own lock to be woken
      lock.lock();
      waking_ = false;
    }
    room_cv_.notify_all();
  }
}

}  // namespace modelsync::engine
