// Every modelsync subcommand registers itself through one function of this shape; main.cc
// calls them all. Add yours here and in cli/CMakeLists.txt (one file per command).
#pragma once

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace modelsync::cli {

void RegisterLog(CLI::App& app, CliContext& ctx);
void RegisterPull(CLI::App& app, CliContext& ctx);
void RegisterStatus(CLI::App& app, CliContext& ctx);
void RegisterDiff(CLI::App& app, CliContext& ctx);
void RegisterTrack(CLI::App& app, CliContext& ctx);
void RegisterUntrack(CLI::App& app, CliContext& ctx);
void RegisterList(CLI::App& app, CliContext& ctx);
void RegisterLs(CLI::App& app, CliContext& ctx);
void RegisterSync(CLI::App& app, CliContext& ctx);
void RegisterDaemon(CLI::App& app, CliContext& ctx);
void RegisterCatalog(CLI::App& app, CliContext& ctx);
void RegisterInspect(CLI::App& app, CliContext& ctx);
void RegisterAddLocal(CLI::App& app, CliContext& ctx);
void RegisterConvert(CLI::App& app, CliContext& ctx);
void RegisterCompletion(CLI::App& app, CliContext& ctx);

}  // namespace modelsync::cli

namespace modelsync::cli {
void RegisterRebuild(CLI::App& app, CliContext& ctx);
void RegisterVerify(CLI::App& app, CliContext& ctx);
void RegisterGc(CLI::App& app, CliContext& ctx);
void RegisterRemove(CLI::App& app, CliContext& ctx);
// cmd_hf_cache.cc: export / import, and pull's --hf-cache.
void RegisterExport(CLI::App& app, CliContext& ctx);
void RegisterImport(CLI::App& app, CliContext& ctx);
// cmd_convert.cc: after pull --convert (and convert): converts models/<org>/<name>/<file> of
// the repo just pulled into ConvertedRepoFor(repo, file) (file "": the PyTorch directory
// models/<org>/<name>/ into <org>/<name>-mlx) with its own marker (model_id, "" = the
// converted repo's name), printing as convert does (--json: one "converted" line).
// Returns the exit status.
int ConvertAfterPull(const std::string& root, const std::string& repo, const std::string& commit,
                     const std::string& model_dir, const std::string& file,
                     const std::string& model_id, const std::string& endpoint, int quantize_bits,
                     bool json);
void AddHfCacheOption(CLI::App* cmd, std::string* dir, const char* help);
// After a pull: export repo to the cache dir ("" = the default cache); prints as export does
// (with --json: one line {"event":"hf_cache", ...}).
Status ExportAfterPull(const std::string& root, const std::string& repo, const std::string& dir,
                       bool json);
}  // namespace modelsync::cli
