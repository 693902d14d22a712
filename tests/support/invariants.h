// Test support: the durable-claims invariants of a root, checked from the outside after a
// crash or a power loss and BEFORE anything repairs it (DESIGN.md invariants 1 and 2).
//
// CheckRootInvariants opens the root's log read-only (engine::Journal::Open(root, true): no
// lock, nothing written) and checks, against the fixture the emulator serves:
//  1. every byte range the state claims for a live transfer (RangesCommitted folded into
//     State::transfers[id].committed) is in .modelsync/partial/<id> and equals the fixture
//     object's bytes at that offset (FixtureDir::ObjectPath(repo, commit, path)); a partial
//     already adopted (renamed to blobs/<content-id>, BlobVerified not yet committed) counts
//     when that blob hashes to its id;
//  2. every blob the log says verified (State::blobs) is in .modelsync/blobs/ with that size
//     and hashes to its content id (sha256 for 64 hex, git blob sha1 for 40);
//  3. nothing under models/ differs from its manifest: for each repo directory
//     models/<org>/<name>/, every entry is a regular file and ONE resolved revision of the
//     repo (State::repos[repo].revisions) has every file at that path with that content (no
//     unknown files, no mix of two revisions);
//  4. a marker <root>/<model-id> of a repo in the log is present only with its model
//     directory complete: every file the log says materialized for the active revision is
//     there when the directory is at the active revision (a directory already swapped to the
//     next revision, not yet activated, passes 3 and is not checked for completeness); and a
//     marker the log says was written (MarkerWritten, no MarkerRemoved since) is present.
//  5. (issue 13) one repo owns each model id, and every empty file at the top of the root
//     is the marker of the repo owning that name, whose active revision passes the
//     loadability rule (engine/loadability.h); the log may not have recorded it yet.
// Staging directories (models/<org>/.<name>.staging, .old) are not checked: they are not
// shown to apps and the next run removes them.
//
// Returns "" when everything holds, otherwise one line per violation (path and what is
// wrong), or the error that stopped the check (e.g. the log does not open). Reads only.
// Not thread-safe; call it while no writer runs on root.
#pragma once

#include <string>

#include "support/emulator.h"

namespace modelsync::testing {

std::string CheckRootInvariants(const std::string& root, const FixtureDir& fixture);

// "" when <root>/.modelsync/models.json is exactly engine::ModelsIndexJson of the log's state
// (true after any writer finished; a crash may leave it one change behind until then).
std::string CheckModelsIndex(const std::string& root);

}  // namespace modelsync::testing
