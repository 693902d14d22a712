#include "engine/file_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "base/fs.h"
#include "base/platform.h"

namespace modelsync::engine {

HashKind KindOfContentId(const std::string& content_id) {
  return content_id.size() == 64 ? HashKind::kSha256 : HashKind::kGitBlobSha1;
}

Result<FileHashResult> HashFile(storage::File& f, HashKind kind,
                                std::atomic<uint64_t>* progress,
                                const std::atomic<bool>* cancel) {
  MS_ASSIGN_OR_RETURN(storage::FileInfo info, f.Stat());
  if (info.type != storage::FileInfo::Type::kFile)
    return Status::InvalidArgument(f.path() + " is not a regular file");
  FileHashResult r;
  r.size = info.size;
  r.dev = info.dev;
  r.ino = info.ino;
  Hasher hasher(kind, r.size);
  constexpr size_t kBuf = 4u << 20;
  std::unique_ptr<char[]> buf(new char[kBuf]);
  uint64_t done = 0;
  for (;;) {
    if (cancel && cancel->load(std::memory_order_relaxed))
      return Status::Cancelled("hashing " + f.path() + " was interrupted");
    MS_ASSIGN_OR_RETURN(size_t n, f.PRead(done, buf.get(), kBuf));
    if (n == 0) break;
    hasher.Update(buf.get(), n);
    done += n;
    if (progress) progress->fetch_add(n, std::memory_order_relaxed);
  }
  if (done != r.size)
    return Status::IOError(f.path() + " changed size while it was read (" + std::to_string(done) +
                           " of " + std::to_string(r.size) + " bytes)");
  f.DropCache(0, 0);
  r.hex = hasher.FinishHex();
  return r;
}

}  // namespace modelsync::engine
