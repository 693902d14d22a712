// Shared state of the emulator tests: one fixture dir and one emulator per test binary.
#pragma once

#include "support/emulator.h"

namespace modelsync::testing {

inline constexpr const char* kToken = "hf_emulator_test_token";

// Built on first use; Reset() before returning so each test starts clean.
struct EmulatorEnv {
  FixtureDir fixtures;
  EmulatorProcess emulator;
  EmulatorEnv();
  static EmulatorEnv& Get();
  std::string Hub(const std::string& path) const { return emulator.hub_url() + path; }
  std::string MainSha(const std::string& repo) const;
};

}  // namespace modelsync::testing
