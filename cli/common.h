// Helpers every modelsync command shares: where the root is, how errors are printed.
//
// Commands follow one pattern (see cli/cmd_log.cc): a `void RegisterX(CLI::App& app,
// CliContext& ctx)` adds the subcommand with its options and a callback that runs it and
// stores its exit status in ctx.exit_code. main.cc calls every RegisterX and returns that.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"

namespace modelsync::cli {

struct CliContext {
  int exit_code = 0;
};

// The default root: $XDG_DATA_HOME/modelsync, else $HOME/.local/share/modelsync.
std::string DefaultRoot();

// Adds `--root DIR` to cmd (env MODELSYNC_ROOT, default DefaultRoot()) writing into *root.
void AddRootOption(CLI::App* cmd, std::string* root);

// Prints "modelsync: <message>" to stderr and returns the exit status for s (non-zero).
int ReportError(const Status& s);

// ISO 8601 UTC with seconds, "2026-11-25T20:11:03Z".
std::string FormatTimeMs(int64_t unix_ms);

}  // namespace modelsync::cli
