// Inspect: what a local model is, from the root's log and its files only (no network).
// Reads the active revision's manifest from the log, the time it was verified (the event
// time of the last MarkerWritten, else RevisionActivated, of the repo), and runs the model
// checks (model_check.h) on models/<org>/<name>/ for quantization, tensors and parameters.
// Errors: kNotFound (the log has no active revision for the repo), kCorruption / kVersion
// from the log. A failing model check is not an error: it is reported in check_error.
// Thread-safe with respect to writers (read-only journal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"
#include "engine/model_check.h"

namespace modelsync::engine {

struct InspectFile {
  std::string path;
  uint64_t size = 0;
  std::string content_id;
};

struct InspectReport {
  std::string repo, model_id, ref, commit;
  std::string model_dir;
  bool marker = false;
  int64_t verified_ms = 0;  // 0 = never marked or activated
  std::vector<InspectFile> files;
  uint64_t total_bytes = 0;
  bool is_model = false;      // carries weights
  std::string check_error;    // empty when the model checks pass
  ModelReport model;          // valid when is_model and check_error is empty
  // A converted model (convert, pull --convert): what it was made from; converter "" else.
  struct Derived {
    std::string converter, source, source_sha256;
    uint64_t source_size = 0;
    size_t inputs = 0;  // files read besides the source (PyTorch)
    // The pulled repo the source is in (pull --convert); "" for a local file.
    std::string source_repo, source_commit, source_file;
  } derived;
};

// repo: "org/name", a model id (marker name) known to the log, or a catalog name.
Result<InspectReport> Inspect(const Env& env, const std::string& root, const std::string& repo);

}  // namespace modelsync::engine
