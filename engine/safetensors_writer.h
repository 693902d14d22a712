// Writes a model's tensors as safetensors shards, streaming (engine/CONVERT.md): the
// converters (GGUF, PyTorch) plan the tensors, then hand over each tensor's bytes in order.
//
//   SafetensorsWriter w(...);            // tensors planned, shards named, free space checked
//   for (int i : w.order())              // the order the bytes must come in
//     while (...) w.Append(bytes of tensor i, front to back);
//   w.Finish(&files)                     // fsync, sha256 of every shard, the index past one
//
// Shards: the tensors in name order, a new shard before one would pass shard_bytes; one
// shard is "model.safetensors", several "model-0000i-of-0000N.safetensors" plus
// "model.safetensors.index.json" (the layout mlx-lm and transformers read). Headers carry
// `"__metadata__": {"format": "mlx"}`. A writer thread does the pwrite and sha256 (the caller
// converts meanwhile); writeback is started every 64 MiB so the final fsync has little to do.
//
// Thread safety: one calling thread; the writer thread is internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/hash.h"
#include "base/status.h"
#include "storage/file_system.h"

namespace modelsync::engine {

struct PlannedTensor {
  std::string name;
  std::string dtype;  // safetensors dtype: "F32", "F16", "BF16", "U32", "I64", ...
  std::vector<uint64_t> shape;
};

// Bytes per element of a safetensors dtype; 0 for one it does not know.
uint64_t DtypeBytes(const std::string& dtype);

// The files a converter wrote: relative names, their sha256, bytes in all.
struct WrittenFiles {
  std::vector<std::string> files;
  std::map<std::string, std::string> sha256;
  uint64_t bytes = 0;
};

// Writes a small file (config.json, ...) into dir: created exclusively, fsynced, hashed.
Status WriteSmallFile(storage::Dir& dir, const std::string& name, const std::string& text,
                      WrittenFiles* written);

class SafetensorsWriter {
 public:
  SafetensorsWriter(storage::Dir& out, std::vector<PlannedTensor> tensors, uint64_t shard_bytes);
  ~SafetensorsWriter();

  // Shards planned; free space for them plus extra_bytes is checked (kNoSpace naming `what`
  // and out's path), then the shard files are created with their headers and the writer
  // thread started.
  Status Open(uint64_t extra_bytes, const std::string& what);
  // Tensor indexes in the order their bytes must be appended.
  const std::vector<int>& order() const { return order_; }
  uint64_t total_bytes() const { return total_; }
  uint64_t tensor_bytes(int i) const { return bytes_[i]; }
  // The next bytes of tensor i (which must be the current one in order()). The first write
  // error is returned by this or a later call.
  Status Append(int tensor, std::string data);
  // Waits for the writes, fsyncs every shard, writes the index (several shards), adds the
  // files to `written`. Every tensor must have been appended in full.
  Status Finish(WrittenFiles* written);
  // Stops the writer thread (after a failure); the caller removes the directory.
  void Abort();

 private:
  struct Sink;
  void StartWriter();
  Status Drain();
  std::string ShardName(size_t s) const;

  storage::Dir& out_;
  std::vector<PlannedTensor> tensors_;
  uint64_t shard_bytes_;
  std::vector<uint64_t> bytes_, shard_of_, appended_;
  std::vector<uint64_t> shard_size_;
  std::vector<int> order_;
  uint64_t total_ = 0;
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::thread writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<size_t, std::string>> queue_;
  bool closing_ = false;
  Status write_status_ = Status::Ok();
};

}  // namespace modelsync::engine
