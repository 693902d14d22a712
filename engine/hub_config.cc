#include "engine/hub_config.h"

#include "engine/version.h"

namespace modelsync::engine {

net::HubOptions HubOptionsOf(const Env& env, const std::string& endpoint) {
  net::HubOptions h;
  const Config& c = env.config;
  h.endpoint = net::NormalizeEndpoint(endpoint.empty() ? c.endpoint : endpoint);
  h.token = c.token;
  h.offline = c.offline;
  h.ca_file = c.ca_file;
  h.ca_dir = c.ca_dir;
  h.proxy = {c.proxy.http,      c.proxy.https,      c.proxy.all,     c.proxy.no_proxy,
             c.proxy.http_from, c.proxy.https_from, c.proxy.all_from};
  h.allow_insecure_redirects = c.allow_insecure_redirects;
  h.stall_timeout = c.stall_timeout;
  h.max_attempts = c.hub_attempts > 0 ? c.hub_attempts : h.max_attempts;
  h.clock = env.clock;
  h.seed = env.random ? env.random->Next() : 0;
  h.user_agent = "modelsync/" + std::string(Version());
  h.transport = env.transport;
  return h;
}

}  // namespace modelsync::engine
