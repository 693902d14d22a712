// The pure part of the revision diff (engine/diff.h describes the classification): internal
// to the engine, on the log's own types.
#pragma once

#include <string>
#include <vector>

#include "engine/diff.h"
#include "engine/state.h"
#include "proto/events.pb.h"

namespace modelsync::engine {

// Pure. from/to: filtered manifests (paths unique). state: for blobs and for other repos'
// materialized content (what stays in use). repo: the repo whose revisions these are.
RevisionDiff DiffRevisions(const std::vector<modelsync::v1::FileEntry>& from,
                           const std::vector<modelsync::v1::FileEntry>& to, const State& state,
                           const std::string& repo);

// The active revision's manifest filtered by the include/exclude it was pulled with (empty
// when nothing is active or the manifest is not in the log).
std::vector<modelsync::v1::FileEntry> ActiveFiles(const RepoState& rs);

}  // namespace modelsync::engine
