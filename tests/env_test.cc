// The Env (engine/env.h): the Config read from the environment in one place.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/env.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::engine;

namespace {

// Unsets the variables on entry and exit.
struct EnvVars {
  explicit EnvVars(std::vector<const char*> names) : names_(std::move(names)) {
    for (auto* n : names_) ::unsetenv(n);
  }
  ~EnvVars() {
    for (auto* n : names_) ::unsetenv(n);
  }
  std::vector<const char*> names_;
};

const std::vector<const char*> kAll = {
    "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HOME",
    "HF_HUB_OFFLINE", "XDG_CACHE_HOME", "MODELSYNC_CHUNK_BYTES", "MODELSYNC_SMALL_FILE_BYTES",
    "MODELSYNC_STALL_TIMEOUT", "MODELSYNC_HUB_ATTEMPTS"};

}  // namespace

TEST_CASE("ConfigFromEnvironment: endpoint, token sources, offline") {
  EnvVars g(kAll);
  testing::TempDir dir;
  ::setenv("HF_HOME", (dir.path() + "/no-home").c_str(), 1);
  auto c = ConfigFromEnvironment();
  REQUIRE(c.ok());
  CHECK(c->endpoint == "https://huggingface.co");
  CHECK(c->token.empty());
  CHECK(!c->offline);
  CHECK(c->chunk_bytes == kDefaultChunkBytes);
  CHECK(c->small_file_bytes == kDefaultSmallFileBytes);

  ::setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  ::setenv("HF_HUB_OFFLINE", "yes", 1);
  const std::string path = dir.path() + "/token";
  { std::ofstream(path) << "  hf_fromfile\n"; }
  ::setenv("HF_TOKEN_PATH", path.c_str(), 1);
  c = ConfigFromEnvironment();
  REQUIRE(c.ok());
  CHECK(c->endpoint == "http://127.0.0.1:9");
  CHECK(c->offline);
  CHECK(c->token == "hf_fromfile");
  ::setenv("HUGGING_FACE_HUB_TOKEN", "hf_legacy", 1);
  CHECK(ConfigFromEnvironment()->token == "hf_legacy");
  ::setenv("HF_TOKEN", "hf_first", 1);
  CHECK(ConfigFromEnvironment()->token == "hf_first");
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HUGGING_FACE_HUB_TOKEN");
  ::unsetenv("HF_TOKEN_PATH");
  const std::string home = dir.path() + "/home";
  ::mkdir(home.c_str(), 0700);
  { std::ofstream(home + "/token") << "hf_fromhome\n"; }
  ::setenv("HF_HOME", home.c_str(), 1);
  CHECK(ConfigFromEnvironment()->token == "hf_fromhome");
  for (const char* v : {"1", "ON", "true", "Yes", " 1 "}) CHECK(IsTruthy(v));
  for (const char* v : {"0", "off", "", "2"}) CHECK(!IsTruthy(v));
}

TEST_CASE("ConfigFromEnvironment: tuning knobs, and a malformed one names itself") {
  EnvVars g(kAll);
  ::setenv("HF_HOME", "/nonexistent-modelsync-home", 1);
  ::setenv("MODELSYNC_CHUNK_BYTES", "8MiB", 1);
  ::setenv("MODELSYNC_SMALL_FILE_BYTES", "4KiB", 1);
  ::setenv("MODELSYNC_STALL_TIMEOUT", "3s", 1);
  ::setenv("MODELSYNC_HUB_ATTEMPTS", "2", 1);
  auto c = ConfigFromEnvironment();
  REQUIRE(c.ok());
  CHECK(c->chunk_bytes == 8u << 20);
  CHECK(c->small_file_bytes == 4096);
  CHECK(c->stall_timeout == std::chrono::seconds(3));
  CHECK(c->hub_attempts == 2);
  struct Bad {
    const char* name;
    const char* value;
  };
  for (const Bad& b : {Bad{"MODELSYNC_CHUNK_BYTES", "lots"}, Bad{"MODELSYNC_CHUNK_BYTES", "0"},
                       Bad{"MODELSYNC_SMALL_FILE_BYTES", "-1"},
                       Bad{"MODELSYNC_STALL_TIMEOUT", "soon"},
                       Bad{"MODELSYNC_HUB_ATTEMPTS", "0"}, Bad{"MODELSYNC_HUB_ATTEMPTS", "3x"}}) {
    CAPTURE(b.name);
    CAPTURE(b.value);
    std::string saved = std::getenv(b.name);
    ::setenv(b.name, b.value, 1);
    auto bad = ConfigFromEnvironment();
    REQUIRE(!bad.ok());
    CHECK(bad.status().code() == StatusCode::kInvalidArgument);
    CHECK(bad.status().message().find(b.name) != std::string::npos);
    ::setenv(b.name, saved.c_str(), 1);
  }
}

TEST_CASE("RealEnv: the real world, configured") {
  Config c;
  c.endpoint = "http://127.0.0.1:1";
  Env e = RealEnv(c);
  CHECK(e.fs != nullptr);
  CHECK(e.clock != nullptr);
  REQUIRE(e.random != nullptr);
  CHECK(e.config.endpoint == "http://127.0.0.1:1");
  CHECK(e.random->Next() != e.random->Next());
  // Seeded sources replay exactly.
  Random a(42), b(42);
  for (int i = 0; i < 8; ++i) CHECK(a.Next() == b.Next());
}
