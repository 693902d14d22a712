// Revision diff: what moving a repo from one revision to another changes on this device.
//
// DiffRevisions() (engine/diff_revisions.h, internal) is a PURE function (no I/O): given the
// file lists of two revisions (already filtered by include/exclude) and the folded State, it
// classifies every path and counts the bytes the switch must download (content not yet in the
// blob store, each content id once) and the bytes gc could free afterwards (blobs only the old
// revision used).
//
// Classification (every path of `from` and `to` appears exactly once):
//  - unchanged: same path, same content id;
//  - modified:  same path, another content id;
//  - renamed:   a path only in `to` whose content id is held by a path only in `from` (the
//               pair is reported once, as the new path with old_path set; each old path
//               pairs at most once, in path order);
//  - added / removed: the rest.
//
// RunDiff() is the command behind `modelsync diff`: it reads the root's log (read-only, no
// lock needed), resolves the remote ref unless local (or HF_HUB_OFFLINE=1), and diffs the
// active revision against it. See its comment for the errors.
//
// Thread safety: DiffRevisions is a pure function; RunDiff opens its own journal and hub.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

enum class ChangeKind { kAdded, kModified, kRemoved, kRenamed, kUnchanged };
const char* ChangeKindName(ChangeKind k);  // "added", "modified", ...

struct FileChange {
  ChangeKind kind = ChangeKind::kUnchanged;
  std::string path;                        // the new path (kRemoved: the old one)
  std::string old_path;                    // kRenamed only
  std::string content_id, old_content_id;  // "" on the side that does not exist
  uint64_t size = 0, old_size = 0;
  bool needs_fetch = false;  // the new content is not a verified blob yet
};

struct RevisionDiff {
  std::string repo;
  std::string from_commit, from_ref;  // the active revision ("" when nothing is active)
  std::string to_commit, to_ref;
  std::vector<FileChange> changes;  // sorted by path
  uint64_t added = 0, modified = 0, removed = 0, renamed = 0, unchanged = 0;
  uint64_t fetch_bytes = 0;  // distinct new content ids not in state.blobs
  uint64_t free_bytes = 0;   // blobs of `from` that neither `to` nor another repo uses
  uint64_t to_bytes = 0;     // size of the target revision (distinct content)
  bool remote = false;       // the target came from a resolve (false: from the log)

  bool Identical() const { return added + modified + removed + renamed == 0; }
};

struct DiffOptions {
  std::string root;
  std::string repo;      // "org/name"
  std::string revision;  // branch, tag or 40-hex commit; "" = main (remote) / the last
                         // resolved commit (local)
  std::string endpoint;  // "" = env.config.endpoint
  bool local = false;    // also implied by env.config.offline: no request at all
};

// Errors: kInvalidArgument (bad repo id), kNotFound (the repo is not in the root's log; or,
// local, --revision names nothing the log knows), kNotFound / kUnauthorized / kTransient
// from the hub when resolving, kCorruption (log).
// A remote diff of the ref the repo tracks records the resolve (RevisionResolved) when it
// can take the root's lock at once, so `status` then shows the update; otherwise it writes
// nothing.
Result<RevisionDiff> RunDiff(const Env& env, const DiffOptions& options);

}  // namespace modelsync::engine
