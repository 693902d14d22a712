#include "engine/transfer_state.h"

#include <algorithm>

namespace modelsync::engine {

void TransferShared::HashLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    cv.wait(lock, [&] { return stop_hashing || !hash_jobs.empty(); });
    if (stop_hashing) return;
    auto [x, upto] = hash_jobs.front();
    hash_jobs.pop_front();
    lock.unlock();
    std::string buf;
    uint64_t pos = x->hashed.load();
    Status s;
    while (pos < upto && s.ok()) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kHashChunk, upto - pos));
      s = x->file->Read(pos, n, &buf);
      if (s.ok()) {
        x->hasher->Update(buf.data(), buf.size());
        pos += buf.size();
        x->hashed.store(pos);
      }
    }
    lock.lock();
    x->hash_error = s;
    x->hash_busy.store(false);
    wake = true;
    cv.notify_all();
  }
}

}  // namespace modelsync::engine
