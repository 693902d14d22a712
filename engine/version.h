// The version of this build of modelsync.
#pragma once

#include <string_view>

namespace modelsync::engine {

std::string_view Version();

}  // namespace modelsync::engine
