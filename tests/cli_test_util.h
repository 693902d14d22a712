// Helpers the CLI suites share (tests/cli_test.cc, tests/cli_waits_test.cc): an emulator
// with small fixtures, JSON lines, a readable record of a run.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fixtures/fixtures.h"
#include "support/cli_process.h"
#include "support/emulator.h"

namespace modelsync::testing::cli {

using nlohmann::json;

using EnvMap = std::map<std::string, std::string>;

constexpr const char* kModel = fixtures::kModelRepo;        // mlx-community/Tiny-Model-4bit
constexpr const char* kVersions = fixtures::kVersionsRepo;  // fixtures/versions (v1, main)

struct Hub {
  Hub() : emu(EmulatorProcess::Options{fixtures.path(), "", 1000, false, {}}) {
    REQUIRE(emu.Start().ok());
  }
  static fixtures::FixtureOptions Small() {
    fixtures::FixtureOptions fo;
    fo.weights_bytes = 64u << 10;
    fo.only = {"model", "versions"};
    return fo;
  }
  EnvMap Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root},        {"HF_ENDPOINT", emu.hub_url()},
            {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
            {"HF_HOME", root + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  }
  std::string Commit(const std::string& repo, const std::string& ref) const {
    return fixtures.RepoJson(repo)["refs"][ref].get<std::string>();
  }
  FixtureDir fixtures{Small()};
  EmulatorProcess emu;
};

// The commit a `pull --json` ended at ("" when it failed).
inline std::string PulledCommit(const CliResult& r) {
  for (const auto& j : JsonLines(r.out))
    if (j.value("event", "") == "done") return j.value("commit", "");
  return "";
}

inline std::string Show(const std::vector<std::string>& args, const CliResult& r) {
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  return cmd + "\n exit " + std::to_string(r.exit_code) + "\n out: " + r.out + "\n err: " + r.err;
}

}  // namespace modelsync::testing::cli
