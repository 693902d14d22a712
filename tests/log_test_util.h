// Helpers for the event-log tests (storage_test, log_compaction_test): open a log read-write
// or fail the test, and edit a log with LMDB itself (no modelsync code in the way).
#pragma once

#include <doctest/doctest.h>
#include <lmdb.h>

#include <functional>
#include <memory>
#include <string>

#include "storage/event_log.h"

namespace modelsync::testing {

inline std::unique_ptr<storage::EventLog> OpenRw(const std::string& root,
                                                 storage::EventLog::Options o = {}) {
  auto r = storage::EventLog::Open(root, storage::EventLog::Mode::kReadWrite, o);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

using RawFn = std::function<void(MDB_txn*, MDB_dbi events, MDB_dbi meta)>;

// Runs fn in one LMDB write transaction on the root's log and commits it.
inline void RawEdit(const std::string& root, const RawFn& fn) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 4);
  REQUIRE(mdb_env_open(env, storage::LogDir(root).c_str(), 0, 0644) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi events, meta;
  REQUIRE(mdb_dbi_open(txn, "events", 0, &events) == 0);
  REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
  fn(txn, events, meta);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

}  // namespace modelsync::testing
