// Test support: run the real `modelsync` binary as a child process.
//
// RunCli waits for it and captures stdout/stderr; SpawnCli starts it in the background (so a
// test can SIGKILL it) with its output sent to files. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace modelsync::testing {

struct CliResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out, err;
};

// $MODELSYNC_BUILD_DIR/cli/modelsync
std::string CliPath();

// env: extra variables (NAME -> value); a value of "\x01unset" removes the variable.
CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {});

// Starts modelsync in the background; stdout/stderr go to out_path/err_path (if non-empty).
pid_t SpawnCli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
               const std::string& out_path = "", const std::string& err_path = "");

// Starts modelsync on a new pseudo-terminal (its stdin, stdout and stderr; it is the session
// leader, the terminal its controlling one), as a user at a terminal runs it: writing "\x03"
// to *master is a real Ctrl-C. The caller reads *master and closes it.
pid_t SpawnCliInTerminal(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env, int* master);

// waitpid: exit code, or 128+signal.
int WaitExit(pid_t pid);

// Polls pred (every 20 ms, real time) until it holds or `seconds` pass: how a test waits for
// another process to reach a state it can observe (a lock file, a line in its log), instead of
// sleeping and hoping. True iff pred held.
template <typename F>
bool WaitFor(F pred, double seconds) {
  auto end = std::chrono::steady_clock::now() +
             std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// The JSON objects of a `--json` output, one per line (other lines skipped).
inline std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') v.push_back(nlohmann::json::parse(line));
  return v;
}

}  // namespace modelsync::testing
