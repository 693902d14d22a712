// Ctrl-C and SIGTERM during a long command (pull, sync, verify).
//
// While an Interrupts object lives, the first SIGINT or SIGTERM sets the flag the engine
// polls (PullOptions::cancel, VerifyOptions::cancel): the command stops within a second,
// keeping every durable byte, and says so. A second signal ends the process at once (what it
// kept is still kept: the log is the truth). Exit status after an interruption: 128 + the
// signal (130 for SIGINT, 143 for SIGTERM), as shells report it.
#pragma once

#include <atomic>
#include <string>

namespace modelsync::cli {

class Interrupts {
 public:
  Interrupts();   // installs the handlers
  ~Interrupts();  // restores the previous ones
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  const std::atomic<bool>* flag() const;
  // 0 until a signal arrived; then SIGINT or SIGTERM.
  int signal() const;
  int ExitCode() const { return 128 + signal(); }
  std::string SignalName() const;  // "SIGINT", "SIGTERM"
};

}  // namespace modelsync::cli
