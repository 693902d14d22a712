// Every modelsync subcommand registers itself through one function of this shape; main.cc
// calls them all. Add yours here and in cli/CMakeLists.txt (one file per command).
#pragma once

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace modelsync::cli {

void RegisterLog(CLI::App& app, CliContext& ctx);
void RegisterPull(CLI::App& app, CliContext& ctx);
void RegisterStatus(CLI::App& app, CliContext& ctx);
void RegisterCatalog(CLI::App& app, CliContext& ctx);
void RegisterInspect(CLI::App& app, CliContext& ctx);
void RegisterAddLocal(CLI::App& app, CliContext& ctx);

}  // namespace modelsync::cli
