// SmallFileWriter: verified small files (the planner's in_memory files) written into the blob
// store and adopted there on a thread of their own, so the control thread of TransferRunner
// only verifies them and launches the next fetches.
//
// Each file's bytes are written as soon as it is verified (Write): given the model's staging
// tree (a Materializer begun), straight into it under the file's own path (Materializer::
// Stage), else to blobs/.tmp-<content id>. Adopt then queues the adoption of a batch of
// written files: one file-system sync for the batch (BlobStore::SyncBatch), then each file
// made a blob: a staged one by a hard link from the tree into blobs/ (Materializer::Publish),
// a temporary one by a rename (BlobStore::AdoptSynced), and blobs/ synced once. A staged file
// takes two directory entries (its own, the blob's) where a temporary one took four
// operations (created, renamed out and in, linked into the tree). Jobs run in the order queued, so an
// adoption comes after the writes of its files; while one is queued or running (Adopting),
// the control thread holds the next batch back (group commit, engine/transfer_cadence.h
// SmallBatchDue), so the files verified during one sync share the next. The control thread
// takes the adopted files (TakeAdopted) and only then records them (BlobVerified): the log
// never names a blob that is not durable (DESIGN invariant 2). A crash before that loses at
// most the files of the batches not yet adopted; they are fetched again.
//
// Memory: a file's bytes are held from Write until written; Write blocks while more than
// kQueueBytes wait, so a slow disk slows the fetching instead of filling memory.
//
// Errors: the first failure stops the jobs after it (they are dropped); TakeAdopted returns
// it, naming the file, from then on.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace modelsync::storage {
class BlobStore;
}

namespace modelsync::engine {

class Materializer;
struct Xfer;

class SmallFileWriter {
 public:
  static constexpr uint64_t kQueueBytes = 32ull << 20;

  // `wake` is called (from the writing thread) when an adoption finished or failed;
  // `adopted` (may be empty), on the same thread, for each file of an adoption that
  // succeeded, before the wake. `tree` (may be null): the staging tree begun for the model
  // (Materializer::Begin); only the writing thread uses it until the writer is destroyed.
  SmallFileWriter(storage::BlobStore& blobs, std::function<void()> wake,
                  std::function<void(Xfer*)> adopted = {}, Materializer* tree = nullptr);
  ~SmallFileWriter();  // stops after the job running now; queued jobs are dropped
  SmallFileWriter(const SmallFileWriter&) = delete;
  SmallFileWriter& operator=(const SmallFileWriter&) = delete;

  // Queues `bytes` (verified to hash to `content_id`) to be written as the blob's temporary
  // file; `path` names the repo file in an error. Blocks while kQueueBytes wait.
  void Write(std::string content_id, std::string path, std::string bytes);
  // Queues the adoption of `files` (each Written before): TakeAdopted hands them back once
  // they are blobs. Several files may share a content id.
  void Adopt(std::vector<Xfer*> files, std::vector<std::string> content_ids);
  // Appends the files adopted since the last call, in the order of their Adopt calls (they
  // are blobs, failure or not); returns the first failure, if any.
  Status TakeAdopted(std::vector<Xfer*>* files);
  // True while a job is queued or running, adopted files wait to be taken, or a failure has
  // not been returned by TakeAdopted yet. A job is over before its wake is called: woken,
  // TakeAdopted then Pending() says whether to wait again. (A job may fail between a caller's
  // TakeAdopted and its Pending(): the failure keeps it pending, or the caller would finish
  // without it: a failed fsync lost, the build then missing the file's blob.)
  bool Pending() const;
  // True while an adoption is queued or running (its wake not called yet): the control thread
  // holds the next batch back until then (SmallBatchDue, group commit).
  bool Adopting() const;
  // Waits until every queued job has run, its wake included.
  void Drain();

 private:
  struct Job {
    std::string content_id, path, bytes;  // a write
    std::vector<Xfer*> files;             // an adoption (content_ids in `ids`)
    std::vector<std::string> ids;
  };
  void Loop();
  Status Run(const Job& job);
  Status Write(const Job& job);

  storage::BlobStore& blobs_;
  Materializer* tree_;
  std::function<void()> wake_;
  std::function<void(Xfer*)> adopted_hook_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // the writing thread's: a job, or stop
  std::condition_variable room_cv_;  // Write and Drain: bytes left the queue, a job ended
  std::deque<Job> jobs_;
  uint64_t queued_bytes_ = 0;
  bool running_ = false;  // a job taken from jobs_ and not finished
  bool waking_ = false;   // a finished job's wake is being called (Drain waits for it)
  bool stop_ = false;
  int adoptions_ = 0;  // adoption jobs queued or running, until their wake
  std::vector<Xfer*> adopted_;  // adopted, not taken yet
  Status error_;
  bool error_taken_ = false;  // error_ returned by TakeAdopted
  // The writing thread's alone: what was written and not adopted yet, by content id.
  std::set<std::string> written_tmp_;                // as blobs/.tmp-<id>
  std::multimap<std::string, std::string> staged_;  // into the tree: id -> path
  std::thread thread_;
};

}  // namespace modelsync::engine
