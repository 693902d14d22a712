#include "net/transport.h"

namespace modelsync::net {

std::optional<std::string> ResponseHead::Get(std::string_view lower_name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->first == lower_name) return it->second;
  }
  return std::nullopt;
}

}  // namespace modelsync::net
