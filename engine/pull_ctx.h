// What one Pull() carries through its steps, and the checks it makes before and after
// fetching: the loadability rule (engine/loadability.h) and the target files (internal to
// engine; pull.cc runs the steps, pull_check.cc holds the checks).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/journal.h"
#include "engine/loadability.h"
#include "engine/pull.h"
#include "proto/events.pb.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"
#include "storage/partial_file.h"

namespace modelsync::engine {

// No model file is 16 TiB; a listing that says so is hostile (its ranges alone would not fit
// in memory).
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 44;

struct Ctx {
  Ctx(const Env& e, const PullOptions& opts, PullObserver* obs) : env(e), o(opts), observer(obs) {}
  const Env& env;
  const PullOptions& o;
  PullObserver* observer;
  std::string root;  // absolute
  std::string model_id;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<storage::Dir> root_dir;
  std::unique_ptr<storage::BlobStore> blobs;
  std::unique_ptr<storage::PartialStore> partials;
  PullSummary* sum = nullptr;
  // The repo's model id before this pull, when it changes (its marker moves after the new
  // one is written).
  std::string old_model_id;
  // The loadability rule (engine/loadability.h): its input, the verdict from the listing,
  // whether the marker is wanted, and the verdict on disk once checked.
  LoadabilityInput load_in;
  Loadability listing;
  bool want_marker = true;
  bool checked = false;
  Loadability on_disk;
};

// Before any fetch: refuses GGUF-only / PyTorch-only repos (unless --any-format), and knows
// whether a marker can be wanted at all.
Status PreCheck(Ctx& c, const std::string& commit, const std::vector<modelsync::v1::FileEntry>& all,
                const std::vector<modelsync::v1::FileEntry>& files);
// The rule on the files on disk (after they are verified and in place).
Status CheckOnDisk(Ctx& c);
// The verdict to report: the disk's once checked, else the listing's.
const Loadability& Verdict(const Ctx& c);
void FillModelSummary(Ctx& c);
// The target files: the manifest filtered by the globs, every path validated.
Result<std::vector<modelsync::v1::FileEntry>> TargetFiles(
    const std::vector<modelsync::v1::FileEntry>& all, const PullOptions& o);

}  // namespace modelsync::engine
