// The one loadability rule (issue 13): does a complete revision, with exactly the files that
// are on disk after include/exclude, get a marker? pull, rebuild, verify, inspect, add-local
// and the daemon (through pull) all ask this, so a marker means the same thing everywhere.
//
//  - kModel: the kept files hold *.safetensors and CheckModelDir passes (config, tokenizer,
//    headers, index, quantization; engine/model_check.h). The only kind that gets a marker.
//  - kPlainFiles: the revision holds no weight files at all: not a model, synced as plain
//    files, no marker (a pull of it succeeds).
//  - kFilteredOut: the revision holds weights but the filter kept none of them: the files
//    asked for are synced, but that is no model ready to load; no marker (pull succeeds and
//    says which filter did it).
//  - kOtherFormat: only GGUF / PyTorch weights kept; refused before any fetch unless
//    --any-format, which downloads them without a marker (pull succeeds, says so).
//  - kNotLoadable: safetensors kept but CheckModelDir failed: no marker; pull fails (exit 1)
//    unless --any-format.
// `reason` says why there is no marker (empty for kModel): the text pull prints, status shows
// and RevisionActivated.unloadable records.
//
// Thread-safe (no shared state).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model_check.h"
#include "engine/state.h"

namespace modelsync::engine {

struct Loadability {
  enum class Kind { kModel, kPlainFiles, kFilteredOut, kOtherFormat, kNotLoadable };
  Kind kind = Kind::kModel;
  std::string reason;
  ModelReport report;  // kModel (after CheckLoadable)
  bool loadable() const { return kind == Kind::kModel; }
};

struct LoadabilityInput {
  std::string repo;
  std::vector<std::string> all_paths;   // the revision's whole listing
  std::vector<std::string> kept_paths;  // what include/exclude keep (what is on disk)
  std::vector<std::string> include, exclude;
  bool any_format = false;
};

// From the listing alone, before any byte is fetched. kModel here means "safetensors kept:
// CheckLoadable decides once the files are on disk". kInvalidArgument (CheckManifest's
// message) for GGUF-/PyTorch-only without any_format.
Result<Loadability> LoadabilityOfListing(const LoadabilityInput& in);

// The whole rule, on the files under model_dir (which must hold kept_paths, verified).
// Errors only as LoadabilityOfListing; a failed model check is kNotLoadable.
Result<Loadability> CheckLoadable(const std::string& model_dir, const LoadabilityInput& in);

// The input for a repo's active revision as the log records it (the files it materialized,
// its filter; any_format, so that another format is "no marker", not an error).
LoadabilityInput LoadabilityInputOf(const RepoState& rs);

}  // namespace modelsync::engine
