// The one resolver of a root's path (internal to engine): every entry point turns the root it
// was given into its absolute, symlink-free form here, through the Env's file system.
#pragma once

#include <string>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

// create: make the root (with parents) when missing (pull, add-local, the daemon). Otherwise a
// missing root is kInvalidArgument (a wrong --root or MODELSYNC_ROOT: exit 2, as the CLI's
// own check says) "there is no modelsync root at ..." (status, verify, gc, ...: nothing that
// only reads or repairs ever creates a root). An empty root is kInvalidArgument too.
Result<std::string> ResolveRoot(const Env& env, const std::string& root, bool create);

}  // namespace modelsync::engine
