// Test support: run the real `modelsync` binary as a child process.
//
// RunCli waits for it and captures stdout/stderr; SpawnCli starts it in the background (so a
// test can SIGKILL it) with its output sent to files. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
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

}  // namespace modelsync::testing
