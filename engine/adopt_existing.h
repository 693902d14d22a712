// Files already in a model directory before a pull (storage/LAYOUT.md "The user's files").
//
// AdoptExisting runs before planning. For each target file whose content is not a verified
// blob yet, a regular file already at its path under models/<org>/<name>/ that is not a link
// to any blob is looked at:
//  - with the manifest's size and bytes that hash to its content id: it becomes the blob
//    (hard-linked into blobs/ under a temporary name, made read-only, hashed there, renamed to
//    its id; BlobVerified with transfer 0), so it is not downloaded again;
//  - otherwise, unless the log materialized that path for this repo (then it is our own copy
//    and is simply replaced): it is the user's, and it is moved aside to
//    .modelsync/kept/<org>/<name>/<path> (".1", ".2", ... when taken), with a FileKept event,
//    so that the revision's file can take its place. Nothing is deleted.
// Everything goes through the Dir handles given (the fault and crash tests reach it).
// Errors: kIOError / kNoSpace naming the path. Thread safety: the pull's thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/journal.h"
#include "engine/planner.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {

struct AdoptResult {
  uint64_t files = 0, bytes = 0;                          // adopted as blobs
  std::vector<std::pair<std::string, std::string>> kept;  // path -> root-relative new place
};

Result<AdoptResult> AdoptExisting(storage::Dir& root, storage::BlobStore& blobs, Journal& journal,
                                  const std::string& repo,
                                  const std::vector<modelsync::v1::FileEntry>& files,
                                  const Observation& obs);

}  // namespace modelsync::engine
