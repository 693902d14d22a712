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
// `"__metadata__": {"format": "mlx"}`.
//
// Three threads share the work: Append copies the bytes into 4 MiB aligned blocks (a pool of
// kBlocks); a full block goes to a hashing thread (sha256 of its shard) and then to a writing
// thread (pwrite, direct I/O where the file system takes it), so converting, hashing and the
// disk all run at once and none waits for another's 4 MiB.
//
// Thread safety: one calling thread; the hashing and writing threads are internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
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

// A byte buffer that grows without zeroing: every byte is written before it is read.
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U>
  NoInitAllocator(const NoInitAllocator<U>&) {}
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    if constexpr (sizeof...(A) == 0) ::new (static_cast<void*>(p)) U;
    else ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};
using Buffer = std::vector<unsigned char, NoInitAllocator<unsigned char>>;

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
  Status Append(int tensor, std::string_view data);
  // Waits for the writes, fsyncs every shard, writes the index (several shards), adds the
  // files to `written`. Every tensor must have been appended in full.
  Status Finish(WrittenFiles* written);
  // Stops the writer thread (after a failure); the caller removes the directory.
  void Abort();

 private:
  struct Sink;
  struct Block {
    char* data = nullptr;
    size_t fill = 0;
    size_t shard = 0;
  };
  // Puts bytes of shard `shard` (the current one) into blocks.
  Status Put(size_t shard, std::string_view data);
  Status Enter(size_t shard);  // the shards before it closed, its header started
  Status Submit();             // the current block to the hashing thread
  void HashLoop();
  void WriteLoop();
  Status Stop();  // the threads joined; the first error
  std::string ShardName(size_t s) const;

  storage::Dir& out_;
  std::vector<PlannedTensor> tensors_;
  uint64_t shard_bytes_;
  std::vector<uint64_t> bytes_, shard_of_, appended_;
  std::vector<uint64_t> shard_size_;
  std::vector<std::string> headers_;
  std::vector<int> order_;
  uint64_t total_ = 0;
  std::vector<std::unique_ptr<Sink>> sinks_;
  size_t entered_ = 0;  // shards whose header has been put
  Block cur_;
  std::vector<char*> pool_, free_;
  std::deque<Block> to_hash_, to_write_;
  std::thread hasher_, writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool closing_ = false, hashed_all_ = false;
  Status status_ = Status::Ok();
};

}  // namespace modelsync::engine
