// The JSON documents of the engine's reports, as `modelsync ... --json` prints them and the C
// API (include/modelsync/modelsync.h) returns them: one renderer for every client. Their
// shapes are the contract in docs/json/ (ls.schema.json, status.schema.json, defs "marker").
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "engine/catalog.h"
#include "engine/diff.h"
#include "engine/gguf.h"
#include "engine/hf_cache.h"
#include "engine/inspect.h"
#include "engine/pull.h"
#include "engine/status.h"

namespace modelsync::engine {

// A marker (docs/json/defs.schema.json "marker"): {"id", "path", "written", "state"} and
// "reason" when the model gets none. state: "written", "absent", "missing", "unexpected",
// "unrecorded" (RepoStatus::marker_state).
nlohmann::json MarkerJson(const std::string& root, const std::string& id, bool written,
                          const std::string& state, const std::string& reason);

// The "done" event of `pull --json` (docs/json/pull.schema.json) for a finished pull.
nlohmann::json PullDoneJson(const PullSummary& s);

// `diff --json` (docs/json/diff.schema.json).
nlohmann::json DiffJson(const RevisionDiff& d);

// `inspect --json` (docs/json/inspect.schema.json).
nlohmann::json InspectJson(const std::string& root, const InspectReport& r);

// One entry of `catalog --json` (docs/json/catalog.schema.json).
nlohmann::json CatalogEntryJson(const CatalogEntry& e);

// `add-local --json` (docs/json/add-local.schema.json) for a model added as model_id.
nlohmann::json AddLocalJson(const PullSummary& s, const std::string& model_id);

// `ls --json`: the installed models of the root (docs/json/ls.schema.json).
nlohmann::json LsJson(const std::string& root, const StatusReport& report);

// `status --json` (docs/json/status.schema.json). daemon: the running daemon's live state,
// or null; offline: HF_HUB_OFFLINE was in force.
nlohmann::json StatusJson(const std::string& root, const StatusReport& report,
                          const nlohmann::json& daemon, bool offline);

// export (docs/json/export.schema.json) and import (import.schema.json, one line per repo).
nlohmann::json HfExportJson(const HfExport& e);
nlohmann::json HfImportRepoJson(const std::string& cache, const HfImportRepo& r);

// inspect FILE.gguf (docs/json/inspect.schema.json, the "gguf" document): the header, every
// tensor, and the metadata with each array given as {"array_of", "count", "head" (its first 8)}.
nlohmann::json GgufJson(const std::string& path, const GgufInfo& g);

}  // namespace modelsync::engine
