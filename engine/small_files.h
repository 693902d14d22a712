// SmallFileWriter: verified small files (the planner's in_memory files) written into the blob
// store and adopted there on threads of their own, so the control thread of TransferRunner
// only verifies them and launches the next fetches.
//
// Each file's bytes go to blobs/.tmp-<content id> as soon as it is verified (Write, on the
// writing thread); Adopt queues the adoption of a batch of written files, one
// BlobStore::AdoptBatch (one file-system sync for the batch, then the renames), on the
// adopting thread. An adoption waits until every write queued before it has run, so it comes
// after the writes of its files; the writes of the next batch go on while it waits for the
// disk (one thread doing both spent a third of its time in syncfs and fell behind the network
// on 600 small files). The control thread takes the adopted files (TakeAdopted) and only then
// records them (BlobVerified): the log never names a blob that is not durable (DESIGN
// invariant 2). A crash before that loses at most the files of the batches not yet adopted;
// they are fetched again.
//
// Memory: a file's bytes are held from Write until written; Write blocks while more than
// kQueueBytes wait, so a slow disk slows the fetching instead of filling memory.
//
// Errors: the first failure stops the jobs after it (they are dropped): no write runs after
// it, and no adoption that needs a write that failed or did not run; an adoption whose files
// were all written before a failed write still runs. TakeAdopted returns the first failure,
// naming the file, from then on.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace modelsync::storage {
class BlobStore;
}

namespace modelsync::engine {

struct Xfer;

class SmallFileWriter {
 public:
  static constexpr uint64_t kQueueBytes = 32ull << 20;

  // `wake` is called (from either thread) when an adoption finished or a job failed;
  // `adopted` (may be empty), on the adopting thread only, for each file of an adoption that
  // succeeded, before the wake.
  SmallFileWriter(storage::BlobStore& blobs, std::function<void()> wake,
                  std::function<void(Xfer*)> adopted = {});
  ~SmallFileWriter();  // stops after the jobs running now; queued jobs are dropped
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
  // True while a job is queued or running, or adopted files wait to be taken. A job is over
  // before its wake is called: woken, TakeAdopted then Pending() says whether to wait again.
  bool Pending() const;
  // Waits until every queued job has run, its wake included.
  void Drain();

 private:
  struct WriteJob {
    std::string content_id, path, bytes;
  };
  struct AdoptJob {
    std::vector<Xfer*> files;
    std::vector<std::string> ids;
    uint64_t after = 0;  // writes queued before it: they run first
  };
  void WriteLoop();
  void AdoptLoop();
  Status RunWrite(const WriteJob& job);
  void Fail(const Status& s);  // with mu_ held: the first failure is kept

  storage::BlobStore& blobs_;
  std::function<void()> wake_;
  std::function<void(Xfer*)> adopted_hook_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // both threads': a job, a write done, or stop
  std::condition_variable room_cv_;  // Write and Drain: bytes left the queue, a job ended
  std::deque<WriteJob> writes_;
  std::deque<AdoptJob> adoptions_;
  uint64_t writes_queued_ = 0;  // Write calls so far
  uint64_t writes_done_ = 0;    // of them, run (or dropped) by the writing thread
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;  // a write taken from writes_ and not finished
  bool adopting_ = false;  // an adoption taken from adoptions_ and not finished
  int waking_ = 0;        // finished jobs whose wake is being called (Drain waits for them)
  bool stop_ = false;
  uint64_t failed_write_ = 0;  // the number (1-based) of the first write that failed, or 0
  bool adoption_failed_ = false;
  std::vector<Xfer*> adopted_;  // adopted, not taken yet
  Status error_;
  std::thread write_thread_;
  std::thread adopt_thread_;
};

}  // namespace modelsync::engine
