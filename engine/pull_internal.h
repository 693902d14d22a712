// Internal knobs of Pull() that are not for users (the file system, the small-file threshold
// and the chunk size come from the Env: tests/crash_test.cc passes a FaultFileSystem there).
#pragma once

#include <functional>

#include "engine/pull.h"

namespace modelsync::engine {

struct PullInternalOptions {
  // Called before (after = false) and after (after = true) each durable event commit
  // (JournalOptions::on_commit): crash-point tests count commits as side effects.
  std::function<void(bool after, size_t events)> on_commit;
};

// Pull() with the internal options (Pull(env, o, obs) == PullWith(env, o, obs, {})).
Result<PullSummary> PullWith(const Env& env, const PullOptions& options, PullObserver* observer,
                             const PullInternalOptions& internal);

}  // namespace modelsync::engine
