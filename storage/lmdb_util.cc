#include "storage/lmdb_util.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>

namespace modelsync::storage::internal {

bool NearlyFull(const std::string& path) {
  struct statvfs v;
  if (::statvfs(path.c_str(), &v) != 0) return false;
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize < (uint64_t{1} << 20);
}

Status FromMdb(int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(msg + " (free some disk space and retry)", rc).Advised();
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_BAD_TXN:
      return Status::Corruption(msg, rc);
    case MDB_INVALID:
      return Status::Corruption(msg + " (the data file is not an LMDB environment)", rc);
    case MDB_VERSION_MISMATCH:
      return Status::Version(msg + " (written by a different LMDB version)", rc);
    case ENOENT:
      return Status::NotFound(msg, rc);
    default:
      return Status::IOError(msg, rc);
  }
}

}  // namespace modelsync::storage::internal
