// The models index: <root>/.modelsync/models.json, for apps that want to know what is
// installed without reading LMDB (storage/LAYOUT.md "models.json").
//
// It is derived from the log (like models/ and the markers): every repo with an active
// revision, keyed by model id, with its directory, commit, size and whether it is loadable
// (its marker is written). Writers rewrite it atomically (a temporary file, fsync, rename,
// fsync of .modelsync/) after every command that changes models: pull (also at its start,
// so that an index a crash left one change behind is fixed by the next run), remove,
// rebuild (always), verify --repair (through pull and rebuild), add-local. The marker stays
// the truth an app must check: after a crash the index may lag one change behind the log
// until the next writer runs.
//
// Thread safety: the caller holds the root's writer lock.
#pragma once

#include <string>

#include "base/status.h"
#include "engine/state.h"

namespace modelsync::storage {
class Dir;
}  // namespace modelsync::storage

namespace modelsync::engine {

inline constexpr const char* kModelsIndexName = "models.json";

// The index document for st (deterministic: sorted by model id, no time stamps).
std::string ModelsIndexJson(const State& st);

// Writes ModelsIndexJson(st) as <root>/.modelsync/models.json when it differs from what is
// there. Errors: kIOError / kNoSpace naming the file.
Status WriteModelsIndex(storage::Dir& root, const State& st);

}  // namespace modelsync::engine
