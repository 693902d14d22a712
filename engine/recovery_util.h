// Shared by rebuild/verify/gc/remove (internal to engine).
#pragma once

#include <map>
#include <memory>
#include <atomic>
#include <string>

#include "base/status.h"
#include "engine/env.h"
#include "engine/journal.h"
#include "engine/root_path.h"
#include "engine/state.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {

// Adds "what you can still do" to a corrupt-log error.
Status ExplainLogError(const Status& s, const std::string& root);

// Opens the root's journal (rw takes the lock) with the explanation above on errors.
// "root R is in use by pid N (modelsync pull org/name); waiting for it to finish".
std::string LockWaitMessage(const std::string& root, int holder_pid);

// Opens the root's journal; a read-write open that must wait for the lock says so through
// env.on_lock_wait first.
Result<std::unique_ptr<Journal>> OpenJournal(const Env& env, const std::string& root,
                                             bool read_only, bool wait_for_lock);

// True when the repo has an active revision with files to check or rebuild.
bool HasActiveFiles(const RepoState& rs);
// The marker name of a repo (its model id, else the repo's name part).
std::string ModelIdOf(const RepoState& rs);
// True when another repo also claims model_id (a log of an older modelsync) and has its
// marker written: that marker is not this repo's alone to remove.
bool SharedMarker(const State& st, const std::string& repo, const std::string& model_id);
// Where a converted model's source is now: for a hub source (pull --convert) the source
// repo's directory in this root, from the recorded source_repo/source_file, or, in a log
// written before those fields, parsed from the label "<endpoint>/<org>/<name>@<commit>[/<file>]";
// else its local path as recorded. "" when it is none of these (or names an invalid repo or
// path). rebuild converts again from there.
std::string ConvertSourcePath(const std::string& root, const v1::Derivation& d);
// path -> manifest size for the active revision (paths the manifest lacks are absent).
std::map<std::string, uint64_t> ActiveSizes(const RepoState& rs);

// Pull at the active commit with the active include/exclude and model id: fetches what is
// missing and converges the directory and marker. Must be called with no Journal of root
// open in this process.
struct RefetchResult {
  uint64_t bytes_fetched = 0;
};
Result<RefetchResult> Refetch(const Env& env, const std::string& root, const RepoState& rs,
                              const std::string& endpoint,
                              const std::atomic<bool>* cancel = nullptr);

// `revision` when it is not a short commit; otherwise the one commit of `repo` the log knows
// that starts with it ("" when the log knows none: ask the hub). kInvalidArgument when several
// commits of the repo start with it, listing them.
// (Defined in repo_ref.cc.)
Result<std::string> ExpandShortCommit(const State& state, const std::string& repo,
                                      const std::string& revision);

}  // namespace modelsync::engine
