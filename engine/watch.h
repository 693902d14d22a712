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

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

// One tracked repo, as `track` records it (the RepoTracked event, proto/events.proto).
struct Tracking {
  std::string repo;      // "org/name" (required)
  std::string ref;       // branch, tag or 40-hex commit; "" = main
  std::string model_id;  // marker name; "" = the id the repo owns, else its name part
  std::vector<std::string> include, exclude;  // fnmatch globs
  uint64_t every_ms = 0;  // the daemon's interval; 0 = not scheduled
  std::string endpoint;   // hub base URL; "" = the Env's
  // track --convert: each sync converts the repo's GGUF (convert_file, or its only one) or
  // PyTorch weights into an MLX model, again only when the source's commit changed.
  bool convert = false;
  std::string convert_file;
  uint32_t quantize_bits = 0;  // 0 = as the source is
  std::string converted_id;    // the converted model's marker; "" = its repo's name
  bool operator==(const Tracking&) const = default;
};

// t.repo is required; an empty ref means "main", an empty model_id the repo's name part.
// Replaces an earlier tracking of the same repo.
Status Track(const Env& env, const std::string& root, Tracking t);
Status Untrack(const Env& env, const std::string& root, const std::string& repo);
// Tracked repos in repo order (ref and model_id filled in).
Result<std::vector<Tracking>> ListTracked(const Env& env, const std::string& root);

}  // namespace modelsync::engine
