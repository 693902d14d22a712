#include "engine/version.h"

namespace modelsync::engine {

std::string_view Version() { return MODELSYNC_VERSION; }

}  // namespace modelsync::engine
