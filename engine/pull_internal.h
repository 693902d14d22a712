// Internal knobs of Pull() that are not for users: tests inject a storage::FileSystem
// (FaultFileSystem) to count side effects and crash at each one (tests/crash_test.cc).
#pragma once

#include "engine/pull.h"
#include "storage/file_system.h"

namespace modelsync::engine {

struct PullInternalOptions {
  storage::FileSystem* fs = nullptr;  // nullptr = storage::RealFileSystem(); must outlive the call
};

// Pull() with the internal options (Pull(o, obs) == PullWith(o, obs, {})).
Result<PullSummary> PullWith(const PullOptions& options, PullObserver* observer,
                             const PullInternalOptions& internal);

}  // namespace modelsync::engine
