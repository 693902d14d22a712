// Internal knobs of Pull() that are not for users: tests inject a storage::FileSystem
// (FaultFileSystem) to count side effects and crash at each one (tests/crash_test.cc).
#pragma once

#include <functional>

#include "engine/pull.h"
#include "storage/file_system.h"

namespace modelsync::engine {

struct PullInternalOptions {
  storage::FileSystem* fs = nullptr;  // nullptr = storage::RealFileSystem(); must outlive the call
  // Files up to this size skip the partial file (TransferRunnerOptions); 0 = the default.
  uint64_t small_file_bytes = 0;
  // Called before (after = false) and after (after = true) each durable event commit
  // (JournalOptions::on_commit): crash-point tests count commits as side effects.
  std::function<void(bool after, size_t events)> on_commit;
};

// Pull() with the internal options (Pull(o, obs) == PullWith(o, obs, {})).
Result<PullSummary> PullWith(const PullOptions& options, PullObserver* observer,
                             const PullInternalOptions& internal);

}  // namespace modelsync::engine
