#include "engine/disk_space.h"

#include "base/units.h"

namespace modelsync::engine {

Status CheckSpace(uint64_t need, uint64_t have, std::string_view where) {
  if (have >= need) return Status::Ok();
  return Status::NoSpace("need " + std::to_string(need) + " bytes (" + FormatBytes(need) +
                         ") under " + std::string(where) + " but only " + std::to_string(have) +
                         " bytes (" + FormatBytes(have) + ") are free: free at least " +
                         std::to_string(need - have) + " bytes (" + FormatBytes(need - have) +
                         ") and run the command again (finished work is kept)");
}

Status CheckFreeSpace(storage::Dir& dir, uint64_t need) {
  MS_ASSIGN_OR_RETURN(uint64_t have, dir.FreeBytes());
  return CheckSpace(need, have, dir.path());
}

}  // namespace modelsync::engine
