#include "net/hub_options.h"

namespace modelsync::net {

std::string NormalizeEndpoint(std::string endpoint) {
  const char* ws = " \t\r\n";
  size_t b = endpoint.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  endpoint = endpoint.substr(b, endpoint.find_last_not_of(ws) - b + 1);
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

}  // namespace modelsync::net
