// The real Env (engine/env.h): the one place the engine's world is chosen. The platform's
// own calls live behind storage::FileSystem (storage/file_system.cc) and are listed in
// docs/PLATFORM.md.
#include <random>

#include "engine/env.h"
#include "storage/file_system.h"

namespace modelsync::engine {

Env RealEnv(Config config) {
  static Random* random = new Random(std::random_device{}());
  Env env;
  env.fs = storage::RealFileSystem();
  env.clock = SystemClock::Default();
  env.random = random;
  env.config = std::move(config);
  return env;
}

}  // namespace modelsync::engine
