// Observe(): the non-pure half of planning. Looks at the disk (blobs, partials, the model
// directory, markers, staging leftovers) and fills an Observation for MakePlan().
//
// Reads only; follows no symlink below the root (a symlink in the model directory is
// reported as ObservedFile::Type::kSymlink; a symlink where models/<org> or the model
// directory should be is an error naming the path). A missing models/... is simply
// "not there". Model files are matched to blobs by inode (hard links), so a file that had
// to be copied (no hard links possible) is reported with an empty blob_id and is rebuilt.
//
// Errors: kInvalidArgument for an invalid repo id; kIOError / kNoSpace from the file system.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "engine/planner.h"
#include "storage/file_system.h"

namespace modelsync::engine {

Result<Observation> Observe(storage::Dir& root, const std::string& repo,
                            const std::vector<std::string>& marker_names);

}  // namespace modelsync::engine
