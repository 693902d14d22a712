// Step 4's kLink with verify_blob (planner.h): a blob on disk that the log never recorded
// (a crash between its adoption and its BlobVerified, or a blob left by an earlier root) is
// re-hashed before anything links to it. Internal to engine; no network.
#pragma once

#include <vector>

#include "base/status.h"
#include "engine/planner.h"
#include "proto/events.pb.h"

namespace modelsync::storage {
class BlobStore;
}

namespace modelsync::engine {

struct BlobCheck {
  std::vector<v1::Event> verified;  // BlobVerified of each blob that hashed right
  bool removed = false;             // a blob hashed wrong and was removed: plan again
};

// Re-hashes every such blob of the plan through the blob store's directory (never a
// symlink). A wrong digest removes the blob (the next plan fetches it); a read error is an
// error (kIOError: the blob may well be good, so it stays). Stops at the first removal.
Result<BlobCheck> CheckUnrecordedBlobs(const Plan& plan, storage::BlobStore& blobs);

}  // namespace modelsync::engine
