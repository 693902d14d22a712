#include "engine/root_path.h"

#include "storage/file_system.h"

namespace modelsync::engine {

Result<std::string> ResolveRoot(const Env& env, const std::string& root, bool create) {
  if (root.empty()) return Status::InvalidArgument("no root given (use --root or MODELSYNC_ROOT)");
  auto r = env.fs->ResolvePath(root, create);
  if (!r.ok() && !create && r.status().IsNotFound())
    return Status::InvalidArgument("there is no modelsync root at " + root +
                            " (check --root or MODELSYNC_ROOT)");
  return r;
}

}  // namespace modelsync::engine
