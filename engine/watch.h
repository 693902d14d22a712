// The watch list: repos the daemon and `modelsync sync` keep current, kept as RepoTracked /
// RepoUntracked events in the root's log (state.h folds them into RepoState::tracked).
//
// Track/Untrack open the root read-write (waiting for the writer lock, said through
// env.on_lock_wait) and append one event;
// ListTracked opens it read-only (no lock, works beside a running writer). None of them may
// be called while this process holds a Journal of the same root (one LMDB handle per process).
// Errors: kInvalidArgument (bad repo id, model id, glob), kNotFound (Untrack of a repo that is
// not tracked), the Journal's errors (kLocked, kCorruption, kVersion, kIOError).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"
#include "proto/events.pb.h"

namespace modelsync::engine {

// t.repo is required; an empty ref means "main", an empty model_id the repo's name part.
// Replaces an earlier tracking of the same repo.
Status Track(const Env& env, const std::string& root, modelsync::v1::RepoTracked t);
Status Untrack(const Env& env, const std::string& root, const std::string& repo);
// Tracked repos in repo order (ref and model_id filled in).
Result<std::vector<modelsync::v1::RepoTracked>> ListTracked(const Env& env,
                                                            const std::string& root);

}  // namespace modelsync::engine
