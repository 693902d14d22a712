// Internal to storage: small RAII helpers over the LMDB C API and error mapping.
#pragma once

#include <lmdb.h>

#include <string>
#include <string_view>

#include "base/status.h"

namespace modelsync::storage::internal {

// An LMDB return code as a Status: MDB_MAP_FULL / ENOSPC -> kNoSpace, MDB_CORRUPTED /
// MDB_PAGE_NOTFOUND / MDB_INVALID -> kCorruption, MDB_VERSION_MISMATCH -> kVersion,
// else kIOError. The MDB code rides along as detail.
Status FromMdb(int rc, std::string_view what);
// True when the file system holding path has less than 1 MiB available (statvfs).
bool NearlyFull(const std::string& path);

inline MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // LMDB never writes through it
}
inline std::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Aborts the transaction on destruction unless Commit() succeeded.
class Txn {
 public:
  Txn() = default;
  ~Txn() { Abort(); }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  // Begins; retries once after adopting a map grown by another process (MDB_MAP_RESIZED).
  int Begin(MDB_env* env, unsigned flags) {
    int rc = mdb_txn_begin(env, nullptr, flags, &txn_);
    if (rc == MDB_MAP_RESIZED) {
      rc = mdb_env_set_mapsize(env, 0);
      if (rc == 0) rc = mdb_txn_begin(env, nullptr, flags, &txn_);
    }
    if (rc != 0) txn_ = nullptr;
    return rc;
  }
  int Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;  // freed by commit, even on failure
    return rc;
  }
  void Abort() {
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

class Cursor {
 public:
  Cursor() = default;
  ~Cursor() {
    if (c_) mdb_cursor_close(c_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int Open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &c_); }
  MDB_cursor* get() const { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
};

}  // namespace modelsync::storage::internal
