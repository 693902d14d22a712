// The hub client's options from an Env (internal to engine: net/ reads no environment).
#pragma once

#include <string>

#include "engine/env.h"
#include "net/hub_options.h"

namespace modelsync::engine {

// env.config's endpoint (or `endpoint` when not empty: a tracked repo's own, --endpoint),
// token, offline, stall timeout and attempts; env's clock; a backoff seed from env.random.
net::HubOptions HubOptionsOf(const Env& env, const std::string& endpoint = "");

}  // namespace modelsync::engine
