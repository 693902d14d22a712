// Status of every repo in a root, computed from the log alone (no network, no lock): what is
// active, how far the last resolved revision has come, whether an update is waiting.
//
// Thread safety: a free function over a read-only journal it opens itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace modelsync::engine {

struct RepoStatus {
  std::string repo;
  std::string model_id;
  // "complete": the marker is written and the active revision is the last one resolved.
  // "partial": some files of the target revision are missing.
  // "failed": the last sync failed (last_error says why) and the target is not complete.
  std::string state;
  std::string active_commit;   // empty when nothing was ever activated
  std::string active_ref;
  std::string target_commit;   // the last commit resolved for the repo
  uint64_t files_total = 0, files_done = 0;  // of the target revision
  uint64_t bytes_total = 0, bytes_done = 0;  // verified blobs + committed ranges
  bool marker = false;
  bool update_available = false;  // the last resolve saw a commit other than the active one
  uint64_t update_bytes = 0;      // bytes that update still needs to fetch
  std::string last_error;
  int64_t last_error_ms = 0;
  bool tracked = false;
};

// repo_filter empty = every repo. kNotFound when the filter names a repo the log never saw.
Result<std::vector<RepoStatus>> ReadStatus(const std::string& root, const std::string& repo_filter);

}  // namespace modelsync::engine
