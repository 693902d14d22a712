// Pull: make <root>/models/<org>/<name>/ and the marker <root>/<model-id> hold a complete,
// verified revision of a hub repo, resuming whatever earlier runs left durable.
//
// The pipeline is resolve -> plan -> fetch -> verify -> materialize -> activate -> mark
// (DESIGN.md). Every fact is an event in the root's log before Pull returns; a crash at any
// instant leaves a state from which the next Pull converges, re-fetching at most the bytes
// that were in flight and not yet fdatasync'ed.
//
// Errors (Status codes): kInvalidArgument (bad repo id, model id, glob or hostile path in
// the listing), kNotFound / kUnauthorized (repo, revision), kOffline (HF_HUB_OFFLINE and
// the model is not complete), kNoSpace (before or during the fetch; committed ranges kept),
// kIntegrity (content failed its hash twice), kLocked (--no-wait and another writer holds
// the root), kTransient (network gave up after retries), kCancelled, kCorruption (log).
//
// Thread safety: Pull runs on the calling thread; the observer is called from that thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

struct PullOptions {
  std::string root;                   // required: the modelsync root
  std::string repo;                   // "org/name"
  std::string revision = "main";      // branch, tag or 40-hex commit
  // Marker name; default = the id the repo already owns, else the repo's name part. An id
  // owned by another repo, or a root entry of that name that is not an empty file, is
  // refused (kInvalidArgument) before any request.
  std::string model_id;
  // The ref the activation records (RevisionActivated) when it is not `revision`: repairs
  // fetch the active commit exactly and keep the branch it was pulled by, so `main` still
  // names the active revision (offline pulls, status, sync). What was resolved is recorded
  // as asked (the commit): the log never claims the branch pointed there now. Empty =
  // revision.
  std::string record_ref;
  std::vector<std::string> include;   // fnmatch globs; empty = everything
  std::vector<std::string> exclude;
  std::string endpoint;               // hub base URL; empty = env.config.endpoint
  int connections = 0;                // most parallel fetches (a cap: transfer_parallel.h); 0 = 16
  bool wait_for_lock = true;          // false: fail with kLocked at once (--no-wait)
  // Not owned; may be null. When *cancel becomes true the pull stops soon (in-flight fetches
  // cancelled, every durable byte recorded) and returns kCancelled.
  const std::atomic<bool>* cancel = nullptr;
  // Not owned; may be null. Cap on the sum of body rates in bytes/s (0 = unlimited), read at
  // the start and polled ~10 times a second while bytes move (adjustable while running).
  const std::atomic<uint64_t>* max_rate = nullptr;
  // Model checks (engine/model_check.h): a GGUF-only or PyTorch-only repo is refused before
  // any byte is fetched unless any_format; the marker is written only if the checks pass.
  bool any_format = false;
  // The daemon's pulls: kNotFound, before any request, when the log (read under the root
  // lock) no longer tracks the repo (a `remove` or `untrack` since the watch list was read),
  // so a removed model never comes back.
  bool only_if_tracked = false;
};

struct PullSummary {
  std::string repo, ref, commit;
  std::string model_dir;      // absolute path of models/<org>/<name>
  std::string marker_path;    // absolute path of the marker
  uint64_t files = 0;
  uint64_t bytes_total = 0;   // size of the revision's (filtered) files
  uint64_t bytes_fetched = 0; // body bytes received this run
  uint64_t bytes_reused = 0;  // satisfied from blobs, partials or the existing directory
  bool up_to_date = false;    // nothing had to change
  double seconds = 0;
  // Model checks (engine/model_check.h), filled when the marker was written this run.
  bool model_checked = false;  // the checks ran and passed
  std::string model_type;      // config.json model_type
  std::string quantization;    // e.g. "4-bit affine, group size 64", or "none"
  uint64_t tensors = 0, parameters = 0;
  std::string note;            // e.g. "not a model: synced as plain files"
  // The marker: whether <root>/<model-id> is written now, and when not, why
  // (engine/loadability.h: plain files, filtered out, another format, checks failed).
  bool marker_written = false;
  std::string marker_note;
  std::string previous_marker;  // absolute path of the marker of a former id, removed
  // Files of the user's that stood where the revision puts its own: path -> root-relative
  // place they were moved to (storage/LAYOUT.md "The user's files").
  std::vector<std::pair<std::string, std::string>> kept;
  bool offline = false;  // HF_HUB_OFFLINE: answered from the log alone
  // Parallel fetches the transfer settled on (engine/transfer_parallel.h); 0 = nothing fetched.
  int connections = 0;
  // Where it began (8 on a near link, 16 on a far one, at most the cap): with `connections`,
  // whether the governor added any. 0 = nothing fetched.
  int start_connections = 0;
  // Whether the transfer wrote bytes ahead of its hashing to the partial files instead of
  // pausing the fetches beyond its memory window (a far link, or a near one that caps each
  // connection: engine/transfer_parallel.h WriteAheadDue).
  bool wrote_ahead = false;
  // Of bytes_fetched, those received straight into the memory window (net/range_reader.h:
  // the long ranges over connections of the range reader's own), not copied out of libcurl.
  uint64_t bytes_in_place = 0;
};

// Callbacks for progress display. Default implementations do nothing.
class PullObserver {
 public:
  virtual ~PullObserver() = default;
  virtual void OnWaitingForLock(const std::string& /*message*/) {}
  virtual void OnResolved(const std::string& /*repo*/, const std::string& /*ref*/,
                          const std::string& /*commit*/, uint64_t /*files*/,
                          uint64_t /*bytes_total*/, uint64_t /*bytes_to_fetch*/) {}
  // Called at most ~10 times a second while bytes move.
  virtual void OnProgress(uint64_t /*bytes_done*/, uint64_t /*bytes_total*/,
                          uint64_t /*files_done*/, uint64_t /*files_total*/) {}
  virtual void OnFileDone(const std::string& /*path*/, uint64_t /*size*/, bool /*fetched*/) {}
  // A request waits before it is retried (the hub asked with Retry-After, a connection was
  // lost or stalled, a 5xx): what happened and what comes next, and how long the wait is.
  // Called from the hub's loop thread, not the caller's: an observer that draws must lock.
  virtual void OnRetry(const std::string& /*message*/, std::chrono::milliseconds /*delay*/) {}
  // Something the user should know that does not stop the pull (once per pull): a token
  // that will travel over plain HTTP.
  virtual void OnWarning(const std::string& /*message*/) {}
};

// The world (file system, clock, randomness, endpoint, token, offline, tuning) is env.
Result<PullSummary> Pull(const Env& env, const PullOptions& options, PullObserver* observer);

}  // namespace modelsync::engine
