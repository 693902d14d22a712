// Status of every repo in a root, computed from the log alone (no network, no lock): what is
// active, how far the last resolved revision has come, whether an update is waiting.
//
// Thread safety: a free function over a read-only journal it opens itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

struct RepoStatus {
  std::string repo;
  std::string model_id;
  // "complete": the active revision is the last one resolved, every file is verified, and the
  //   marker is written (or the revision, by the loadability rule, gets none: no_marker_reason).
  // "update-available": complete at the active revision; the last resolve saw a newer one.
  // "partial": some files of the target revision are missing (a pull was interrupted).
  // "failed": the last sync failed (last_error says why) and the target is not complete.
  std::string state;
  bool never_completed = false;  // nothing was ever activated (a first pull that failed)
  std::string active_commit;   // empty when nothing was ever activated
  std::string active_ref;
  std::string target_commit;   // the last commit resolved for the repo
  // Of the active revision when there is one (else of the target).
  uint64_t files_total = 0, files_done = 0;
  uint64_t bytes_total = 0, bytes_done = 0;  // verified blobs + committed ranges
  bool marker = false;          // the log says the marker is written
  bool marker_on_disk = false;  // <root>/<model_id> is an empty file now
  // "written", "absent", "missing" (the log says written, the file is gone: damage),
  // "unexpected" (the file is there, the log never wrote it and says the revision gets none,
  // or nothing is active: damage), "unrecorded" (there, not yet recorded: a crash between
  // the marker's fsync and its event; the next pull records it).
  std::string marker_state;
  std::string no_marker_reason;   // complete, but no marker by the loadability rule
  // A converted model (its active revision's derived_from): the source as recorded and the
  // converter; both "" else.
  std::string converted_from, converter;
  std::vector<std::string> shared_with;  // other repos claiming the same model id (damage)
  bool update_available = false;  // the last resolve saw a commit other than the active one
  uint64_t update_files = 0;      // files of that commit not yet verified
  uint64_t update_bytes = 0;      // bytes that update still needs to fetch
  std::string last_error;
  int64_t last_error_ms = 0;
  int64_t last_checked_ms = 0;  // when the hub was last asked (the last resolve)
  bool tracked = false;
};

struct StatusReport {
  std::vector<RepoStatus> repos;
  // Empty files at the top of the root named like a model id that no repo's written marker
  // accounts for (damage: `modelsync rebuild` removes them).
  std::vector<std::string> stray_markers;
  // What the root holds on disk: verified blobs (every model file is a link to one, so this is
  // what models/ costs) and partial downloads.
  uint64_t blob_bytes = 0, partial_bytes = 0;
  bool damaged() const;
};

// repo_filter empty = every repo. kNotFound when the filter names a repo the log never saw
// (or a removed one).
Result<StatusReport> ReadStatus(const Env& env, const std::string& root,
                                const std::string& repo_filter);

}  // namespace modelsync::engine
