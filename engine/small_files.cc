#include "engine/small_files.h"

#include <set>
#include <utility>

#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {

SmallFileWriter::SmallFileWriter(storage::BlobStore& blobs, std::function<void()> wake,
                                 std::function<void(Xfer*)> adopted)
    : blobs_(blobs),
      wake_(std::move(wake)),
      adopted_hook_(std::move(adopted)),
      write_thread_([this] { WriteLoop(); }),
      adopt_thread_([this] { AdoptLoop(); }) {}

SmallFileWriter::~SmallFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  room_cv_.notify_all();
  write_thread_.join();
  adopt_thread_.join();
}

void SmallFileWriter::Write(std::string content_id, std::string path, std::string bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  room_cv_.wait(lock, [&] { return queued_bytes_ <= kQueueBytes || stop_; });
  queued_bytes_ += bytes.size();
  WriteJob job;
  job.content_id = std::move(content_id);
  job.path = std::move(path);
  job.bytes = std::move(bytes);
  writes_.push_back(std::move(job));
  ++writes_queued_;
  cv_.notify_all();
}

void SmallFileWriter::Adopt(std::vector<Xfer*> files, std::vector<std::string> content_ids) {
  if (files.empty()) return;
  AdoptJob job;
  job.files = std::move(files);
  job.ids = std::move(content_ids);
  std::lock_guard<std::mutex> lock(mu_);
  job.after = writes_queued_;
  adoptions_.push_back(std::move(job));
  cv_.notify_all();
}

Status SmallFileWriter::TakeAdopted(std::vector<Xfer*>* files) {
  std::lock_guard<std::mutex> lock(mu_);
  files->insert(files->end(), adopted_.begin(), adopted_.end());
  adopted_.clear();
  return error_;
}

bool SmallFileWriter::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !writes_.empty() || !adoptions_.empty() || writing_ || adopting_ || !adopted_.empty();
}

void SmallFileWriter::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  room_cv_.wait(lock, [&] {
    return (writes_.empty() && adoptions_.empty() && !writing_ && !adopting_ && waking_ == 0) ||
           stop_;
  });
}

void SmallFileWriter::Fail(const Status& s) {
  if (error_.ok()) error_ = s;
}

Status SmallFileWriter::RunWrite(const WriteJob& job) {
  const std::string tmp = ".tmp-" + job.content_id;
  auto f = blobs_.dir().OpenFile(tmp, storage::OpenMode::kCreateTruncate);
  if (!f.ok()) {
    // A run that crashed after writing this content left its copy read-only (unless root,
    // nobody may truncate it): removed, and made again.
    if (!blobs_.dir().Unlink(tmp).ok()) return f.status();
    f = blobs_.dir().OpenFile(tmp, storage::OpenMode::kCreateTruncate);
    if (!f.ok()) return f.status();
  }
  MS_RETURN_IF_ERROR((*f)->PWrite(0, job.bytes));
  return (*f)->Chmod(0444);  // read-only as a blob, on this handle (AdoptBatch does not reopen)
}

void SmallFileWriter::WriteLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !writes_.empty(); });
    if (stop_) return;
    WriteJob job = std::move(writes_.front());
    writes_.pop_front();
    writing_ = true;
    const bool failed = !error_.ok();  // after a failure, writes are dropped
    lock.unlock();
    Status s = failed ? Status::Ok() : RunWrite(job).With(job.path);  // names the repo file
    const uint64_t freed = job.bytes.size();
    std::string().swap(job.bytes);
    lock.lock();
    queued_bytes_ -= freed;
    ++writes_done_;
    if (!s.ok()) {
      if (failed_write_ == 0) failed_write_ = writes_done_;
      Fail(s);
    }
    writing_ = false;
    cv_.notify_all();  // an adoption may wait for this write
    if (!s.ok()) {
      ++waking_;
      lock.unlock();
      wake_();  // outside mu_: the control thread takes its own lock to be woken
      lock.lock();
      --waking_;
    }
    room_cv_.notify_all();
  }
}

void SmallFileWriter::AdoptLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // The next adoption, once every write queued before it has run.
    cv_.wait(lock, [&] {
      return stop_ || (!adoptions_.empty() && writes_done_ >= adoptions_.front().after);
    });
    if (stop_) return;
    AdoptJob job = std::move(adoptions_.front());
    adoptions_.pop_front();
    adopting_ = true;
    // Runs only if every file of it was written: no write up to `after` failed, and no
    // adoption failed before it.
    const bool run = !adoption_failed_ && (failed_write_ == 0 || failed_write_ > job.after);
    lock.unlock();
    Status s;
    if (run) {
      std::vector<std::pair<std::string, std::string>> names;
      std::set<std::string> seen;
      for (const std::string& id : job.ids)
        if (seen.insert(id).second) names.push_back({".tmp-" + id, id});
      s = blobs_.AdoptBatch(blobs_.dir(), names);
      if (s.ok() && adopted_hook_)
        for (Xfer* x : job.files) adopted_hook_(x);
    }
    lock.lock();
    if (!s.ok()) {
      adoption_failed_ = true;
      Fail(s);
    }
    if (run && s.ok()) adopted_.insert(adopted_.end(), job.files.begin(), job.files.end());
    // The job is over before the wake: a control thread woken by it must find Pending()
    // false once it took the files, or it would wait for a wake that never comes.
    adopting_ = false;
    ++waking_;
    lock.unlock();
    wake_();  // outside mu_: the control thread takes its own lock to be woken
    lock.lock();
    --waking_;
    room_cv_.notify_all();
  }
}

}  // namespace modelsync::engine
