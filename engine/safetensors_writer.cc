#include "engine/safetensors_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/platform.h"

namespace modelsync::engine {

using json = nlohmann::ordered_json;

uint64_t DtypeBytes(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL") return 1;
  return 0;
}

Status WriteSmallFile(storage::Dir& dir, const std::string& name, const std::string& text,
                      WrittenFiles* written) {
  MS_ASSIGN_OR_RETURN(auto f, dir.OpenFile(name, storage::OpenMode::kCreateExclusive, 0644));
  MS_RETURN_IF_ERROR(f->PWrite(0, text));
  MS_RETURN_IF_ERROR(f->DataSync());
  Hasher h(HashKind::kSha256, text.size());
  h.Update(text.data(), text.size());
  written->files.push_back(name);
  written->sha256[name] = h.FinishHex();
  written->bytes += text.size();
  return Status::Ok();
}

// One output file, written front to back in blocks. Where the file system takes direct I/O
// (storage::File::SetDirectIO), every block but a shard's last is whole and aligned and goes
// past the page cache (the last padded to kAlign, then the file truncated to its length): a
// converted model is written once and read by another process later, and this VM's buffered
// writes of new data cost ~4x the time (docs/PLATFORM.md). Otherwise ordinary pwrites,
// writeback started every 64 MiB. The hashing thread owns `h`, the writing thread the rest.
static constexpr size_t kAlign = 4096;  // platform::kDirectAlign
static constexpr size_t kBlock = 4u << 20;
static constexpr size_t kBlocks = 6;  // 24 MiB: the caller, the hasher and the disk each busy

struct SafetensorsWriter::Sink {
  Sink(std::unique_ptr<storage::File> file, Hasher hasher) : f(std::move(file)), h(std::move(hasher)) {
    direct = f->SetDirectIO(true).ok();
  }

  std::unique_ptr<storage::File> f;
  Hasher h;
  uint64_t written = 0;  // bytes on the file
  uint64_t started = 0;  // buffered: writeback started up to here
  bool direct = false;

  // Writes `fill` bytes of the aligned buffer `data` (which has room to pad to kAlign). A
  // file system that opens with O_DIRECT but refuses the write itself (EINVAL: alignment it
  // does not take) gets it, and the rest, as ordinary writes; any other error is the error.
  Status Write(char* data, size_t fill) {
    if (direct) {
      const size_t padded = (fill + kAlign - 1) / kAlign * kAlign;
      std::memset(data + fill, 0, padded - fill);
      Status st = f->PWrite(written, std::string_view(data, padded));
      if (st.ok()) {
        if (padded != fill) MS_RETURN_IF_ERROR(f->Truncate(written + fill));
        written += fill;
        return Status::Ok();
      }
      if (st.detail() != EINVAL || !f->SetDirectIO(false).ok()) return st;
      direct = false;
    }
    MS_RETURN_IF_ERROR(f->PWrite(written, std::string_view(data, fill)));
    written += fill;
    if (written - started >= (64u << 20)) {
      f->StartWriteback(started, written - started);
      started = written;
    }
    return Status::Ok();
  }
};

SafetensorsWriter::SafetensorsWriter(storage::Dir& out, std::vector<PlannedTensor> tensors,
                                     uint64_t shard_bytes)
    : out_(out), tensors_(std::move(tensors)), shard_bytes_(shard_bytes) {
  const size_t n = tensors_.size();
  bytes_.resize(n);
  shard_of_.resize(n);
  appended_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    uint64_t elems = 1;
    for (auto d : tensors_[i].shape) elems *= d;
    bytes_[i] = elems * DtypeBytes(tensors_[i].dtype);
  }
  order_.resize(n);
  for (size_t i = 0; i < n; ++i) order_[i] = static_cast<int>(i);
  std::sort(order_.begin(), order_.end(),
            [&](int x, int y) { return tensors_[x].name < tensors_[y].name; });
  shard_size_.assign(1, 0);
  for (int i : order_) {
    if (shard_size_.back() > 0 && shard_size_.back() + bytes_[i] > shard_bytes_) shard_size_.push_back(0);
    shard_of_[i] = shard_size_.size() - 1;
    shard_size_.back() += bytes_[i];
    total_ += bytes_[i];
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  Abort();
  for (char* p : pool_) std::free(p);
}

std::string SafetensorsWriter::ShardName(size_t s) const {
  if (shard_size_.size() == 1) return "model.safetensors";
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", s + 1, shard_size_.size());
  return buf;
}

Status SafetensorsWriter::Open(uint64_t extra_bytes, const std::string& what) {
  const size_t n = shard_size_.size();
  std::vector<json> headers(n, json::object());
  std::vector<uint64_t> offset(n, 0);
  for (size_t s = 0; s < n; ++s) headers[s]["__metadata__"] = {{"format", "mlx"}};
  for (int i : order_) {
    const size_t s = shard_of_[i];
    headers[s][tensors_[i].name] = {{"dtype", tensors_[i].dtype}, {"shape", tensors_[i].shape},
                                    {"data_offsets", {offset[s], offset[s] + bytes_[i]}}};
    offset[s] += bytes_[i];
  }
  // Room for all of it first: a full disk is said before a byte is written.
  const uint64_t needed = total_ + extra_bytes + (1u << 20);
  if (auto free = out_.FreeBytes(); free.ok() && *free < needed)
    return Status::NoSpace("converting " + what + " needs " + std::to_string(needed >> 20) +
                           " MiB in " + out_.path() + ", which has " + std::to_string(*free >> 20) +
                           " MiB free: free some space (modelsync gc removes blobs no model uses)");
  for (size_t s = 0; s < n; ++s) {
    std::string h = headers[s].dump();
    while ((8 + h.size()) % 8 != 0) h.push_back(' ');
    std::string prefix(8, '\0');
    for (int k = 0; k < 8; ++k) prefix[k] = static_cast<char>((h.size() >> (8 * k)) & 0xFF);
    headers_.push_back(prefix + h);
    MS_ASSIGN_OR_RETURN(auto f, out_.OpenFile(ShardName(s), storage::OpenMode::kCreateExclusive, 0644));
    sinks_.push_back(std::make_unique<Sink>(std::move(f), Hasher(HashKind::kSha256, headers_[s].size() + shard_size_[s])));
  }
  for (size_t k = 0; k < kBlocks; ++k) {
    // Aligned to huge pages and advised to be backed by them (platform::AdviseHugePages): an
    // O_DIRECT write of a block then pins 2 pages instead of 1,024.
    static_assert(kBlock % platform::kHugePage == 0);
    char* p = static_cast<char*>(std::aligned_alloc(platform::kHugePage, kBlock));
    if (p) platform::AdviseHugePages(p, kBlock);
    if (!p)
      return Status::IOError("no memory for the conversion's write buffers (" +
                             std::to_string((kBlocks * kBlock) >> 20) + " MiB)", ENOMEM);
    pool_.push_back(p);
  }
  free_ = pool_;
  hasher_ = std::thread([this] { HashLoop(); });
  writer_ = std::thread([this] { WriteLoop(); });
  return Enter(0);
}

// Blocks flow caller -> to_hash_ -> hashing thread -> to_write_ -> writing thread -> free_,
// in order. The first error (the writing thread's) stops the flow: the blocks still queued
// go back to free_ unwritten, and the caller's next Append (or Finish) returns the error.
void SafetensorsWriter::HashLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !to_hash_.empty() || closing_; });
    if (to_hash_.empty()) break;
    Block b = to_hash_.front();
    to_hash_.pop_front();
    const bool failed = !status_.ok();
    lock.unlock();
    if (!failed) {
      // The block was just written by the caller's core: sha256 stalls on every cache line
      // of it (~1.5x slower) unless the next chunk is fetched while this one is hashed.
      constexpr size_t kChunk = 16u << 10;
      for (size_t o = 0; o < b.fill; o += kChunk) {
        for (size_t p = o + kChunk; p < std::min(b.fill, o + 2 * kChunk); p += 64) __builtin_prefetch(b.data + p);
        sinks_[b.shard]->h.Update(b.data + o, std::min(kChunk, b.fill - o));
      }
    }
    lock.lock();
    if (failed) free_.push_back(b.data);
    else to_write_.push_back(b);
    cv_.notify_all();
  }
  hashed_all_ = true;
  cv_.notify_all();
}

void SafetensorsWriter::WriteLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !to_write_.empty() || hashed_all_; });
    if (to_write_.empty()) return;
    Block b = to_write_.front();
    to_write_.pop_front();
    const bool failed = !status_.ok();
    lock.unlock();
    Status st = failed ? Status::Ok() : sinks_[b.shard]->Write(b.data, b.fill);
    lock.lock();
    if (!st.ok() && status_.ok()) status_ = st;
    free_.push_back(b.data);
    cv_.notify_all();
  }
}

Status SafetensorsWriter::Submit() {
  if (!cur_.data) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (cur_.fill == 0) free_.push_back(cur_.data);
  else to_hash_.push_back(cur_);
  cur_ = Block{};
  cv_.notify_all();
  return status_;
}

Status SafetensorsWriter::Enter(size_t shard) {
  while (entered_ <= shard) {
    if (entered_ > 0) MS_RETURN_IF_ERROR(Submit());  // a shard's last block: its own
    const size_t s = entered_++;
    MS_RETURN_IF_ERROR(Put(s, headers_[s]));
  }
  return Status::Ok();
}

Status SafetensorsWriter::Put(size_t shard, std::string_view data) {
  while (!data.empty()) {
    if (!cur_.data) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !free_.empty() || !status_.ok(); });
      if (!status_.ok()) return status_;
      cur_ = Block{free_.back(), 0, shard};
      free_.pop_back();
    }
    const size_t k = std::min(kBlock - cur_.fill, data.size());
    std::memcpy(cur_.data + cur_.fill, data.data(), k);
    cur_.fill += k;
    data.remove_prefix(k);
    if (cur_.fill == kBlock) MS_RETURN_IF_ERROR(Submit());
  }
  return Status::Ok();
}

Status SafetensorsWriter::Append(int tensor, std::string_view data) {
  appended_[tensor] += data.size();
  if (appended_[tensor] > bytes_[tensor])
    return Status::Corruption("internal: tensor " + tensors_[tensor].name + " got more bytes than its shape holds");
  MS_RETURN_IF_ERROR(Enter(shard_of_[tensor]));
  return Put(shard_of_[tensor], data);
}

Status SafetensorsWriter::Stop() {
  if (hasher_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    hasher_.join();
    writer_.join();
  }
  if (cur_.data) free_.push_back(cur_.data), cur_ = Block{};
  return status_;
}

void SafetensorsWriter::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_.ok()) status_ = Status::Cancelled("the conversion's writing was stopped");
  }
  cv_.notify_all();
  (void)Stop();
  sinks_.clear();
}

Status SafetensorsWriter::Finish(WrittenFiles* written) {
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (appended_[i] != bytes_[i])
      return Status::Corruption("internal: tensor " + tensors_[i].name + " got " + std::to_string(appended_[i]) +
                              " of its " + std::to_string(bytes_[i]) + " bytes");
  MS_RETURN_IF_ERROR(Enter(sinks_.size() - 1));  // shards of no bytes have their headers too
  MS_RETURN_IF_ERROR(Submit());
  MS_RETURN_IF_ERROR(Stop());
  for (size_t s = 0; s < sinks_.size(); ++s) {
    MS_RETURN_IF_ERROR(sinks_[s]->f->DataSync());
    written->files.push_back(ShardName(s));
    written->sha256[ShardName(s)] = sinks_[s]->h.FinishHex();
    written->bytes += sinks_[s]->written;
  }
  sinks_.clear();
  if (shard_size_.size() > 1) {
    json index = {{"metadata", {{"total_size", total_}}}, {"weight_map", json::object()}};
    for (int i : order_) index["weight_map"][tensors_[i].name] = ShardName(shard_of_[i]);
    MS_RETURN_IF_ERROR(WriteSmallFile(out_, "model.safetensors.index.json", index.dump(2) + "\n", written));
  }
  return Status::Ok();
}

}  // namespace modelsync::engine
