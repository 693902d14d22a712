#include "engine/safetensors_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

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

// One output file written front to back, sha256 on the way. Where the file system takes
// direct I/O (storage::File::SetDirectIO), the bytes go out in aligned 4 MiB blocks past the
// page cache (the last block padded, then the file truncated to its length): a converted
// model is written once and read by another process later, and this VM's buffered writes of
// new data cost ~4x the time (docs/PLATFORM.md). Otherwise ordinary pwrites, writeback
// started every 64 MiB.
struct SafetensorsWriter::Sink {
  static constexpr size_t kAlign = 4096;  // platform::kDirectAlign
  static constexpr size_t kBlock = 4u << 20;
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };

  Sink(std::unique_ptr<storage::File> file, Hasher hasher) : f(std::move(file)), h(std::move(hasher)) {
    if (f->SetDirectIO(true).ok()) {
      buf.reset(static_cast<char*>(std::aligned_alloc(kAlign, kBlock)));
      direct = buf != nullptr;
      if (!direct) (void)f->SetDirectIO(false);
    }
  }

  std::unique_ptr<storage::File> f;
  Hasher h;
  uint64_t pos = 0;      // bytes appended
  uint64_t written = 0;  // bytes handed to the file
  uint64_t started = 0;  // buffered: writeback started up to here
  bool direct = false;
  std::unique_ptr<char, Free> buf;
  size_t fill = 0;

  Status Append(std::string_view data) {
    h.Update(data.data(), data.size());
    pos += data.size();
    while (direct && !data.empty()) {
      const size_t k = std::min(kBlock - fill, data.size());
      std::memcpy(buf.get() + fill, data.data(), k);
      fill += k;
      data.remove_prefix(k);
      if (fill == kBlock) MS_RETURN_IF_ERROR(Flush());
    }
    if (data.empty()) return Status::Ok();
    MS_RETURN_IF_ERROR(f->PWrite(written, data));
    written += data.size();
    if (written - started >= (64u << 20)) {
      f->StartWriteback(started, written - started);
      started = written;
    }
    return Status::Ok();
  }

  // Writes the block buffer (the last one padded to kAlign, the padding cut off after). A
  // file system that opens with O_DIRECT but refuses the write itself (EINVAL: alignment it
  // does not take) gets it, and the rest, as ordinary writes; any other error is the error.
  Status Flush() {
    if (fill == 0) return Status::Ok();
    const size_t padded = (fill + kAlign - 1) / kAlign * kAlign;
    std::memset(buf.get() + fill, 0, padded - fill);
    Status st = f->PWrite(written, std::string_view(buf.get(), padded));
    if (!st.ok()) {
      if (st.detail() != EINVAL || !f->SetDirectIO(false).ok()) return st;
      direct = false;
      MS_RETURN_IF_ERROR(f->PWrite(written, std::string_view(buf.get(), fill)));
    } else if (padded != fill) {
      MS_RETURN_IF_ERROR(f->Truncate(written + fill));
    }
    written += fill;
    fill = 0;
    return Status::Ok();
  }

  // Everything on the file, then fdatasync.
  Status Close() {
    if (direct) MS_RETURN_IF_ERROR(Flush());
    return f->DataSync();
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

SafetensorsWriter::~SafetensorsWriter() { Abort(); }

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
    MS_ASSIGN_OR_RETURN(auto f, out_.OpenFile(ShardName(s), storage::OpenMode::kCreateExclusive, 0644));
    sinks_.push_back(std::make_unique<Sink>(std::move(f), Hasher(HashKind::kSha256, 8 + h.size() + shard_size_[s])));
    MS_RETURN_IF_ERROR(sinks_.back()->Append(prefix + h));
  }
  StartWriter();
  return Status::Ok();
}

// The sinks are fed by one writer thread: a queue of at most kQueued buffers, in order. The
// first error stops the writing; it is returned by the next Append() or by Drain().
static constexpr size_t kQueued = 4;

void SafetensorsWriter::StartWriter() {
  writer_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return !queue_.empty() || closing_; });
      if (queue_.empty()) return;
      auto [shard, data] = std::move(queue_.front());
      queue_.pop_front();
      const bool failed = !write_status_.ok();
      lock.unlock();
      cv_.notify_all();
      Status st = failed ? Status::Ok() : sinks_[shard]->Append(data);
      lock.lock();
      if (!st.ok() && write_status_.ok()) write_status_ = st;
    }
  });
}

Status SafetensorsWriter::Append(int tensor, std::string data) {
  appended_[tensor] += data.size();
  if (appended_[tensor] > bytes_[tensor])
    return Status::Corruption("internal: tensor " + tensors_[tensor].name + " got more bytes than its shape holds");
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return queue_.size() < kQueued; });
  if (!write_status_.ok()) return write_status_;
  queue_.emplace_back(shard_of_[tensor], std::move(data));
  cv_.notify_all();
  return Status::Ok();
}

Status SafetensorsWriter::Drain() {
  if (!writer_.joinable()) return write_status_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  writer_.join();
  return write_status_;
}

void SafetensorsWriter::Abort() {
  (void)Drain();
  sinks_.clear();
}

Status SafetensorsWriter::Finish(WrittenFiles* written) {
  MS_RETURN_IF_ERROR(Drain());
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (appended_[i] != bytes_[i])
      return Status::Corruption("internal: tensor " + tensors_[i].name + " got " + std::to_string(appended_[i]) +
                              " of its " + std::to_string(bytes_[i]) + " bytes");
  for (size_t s = 0; s < sinks_.size(); ++s) {
    MS_RETURN_IF_ERROR(sinks_[s]->Close());
    written->files.push_back(ShardName(s));
    written->sha256[ShardName(s)] = sinks_[s]->h.FinishHex();
    written->bytes += sinks_[s]->pos;
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
