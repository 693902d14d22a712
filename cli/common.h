// Helpers every modelsync command shares: where the root is, how errors are printed.
//
// Commands follow one pattern (see cli/cmd_log.cc): a `void RegisterX(CLI::App& app,
// CliContext& ctx)` adds the subcommand with its options and a callback that runs it and
// stores its exit status in ctx.exit_code. main.cc calls every RegisterX and returns that.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "base/units.h"
#include "engine/env.h"
#include "engine/report_json.h"

namespace modelsync::cli {

struct CliContext {
  int exit_code = 0;
};

// The default root: $XDG_DATA_HOME/modelsync, else $HOME/.local/share/modelsync.
std::string DefaultRoot();

// Adds `--root DIR` to cmd (env MODELSYNC_ROOT, default DefaultRoot()) writing into *root.
void AddRootOption(CLI::App* cmd, std::string* root);

// For commands that read a root: OK when root is a modelsync root (has .modelsync/) or is
// the default root (which may not exist yet: "no models yet"); kInvalidArgument (exit 2)
// naming it otherwise (a mistyped --root or MODELSYNC_ROOT).
Status CheckReadRoot(const std::string& root);

// The Env every command runs the engine with: the real world, configured from the process
// environment (engine::ConfigFromEnvironment) once. A malformed variable (e.g.
// MODELSYNC_CHUNK_BYTES=lots) is reported and the process exits 2 before any work.
const engine::Env& CliEnv();

// Prints "modelsync: <message>" to stderr and returns the exit status for s (non-zero).
int ReportError(const Status& s);
// The same, and under --json (json) also the error object every command prints on stdout:
// {"event":"error","code":"NotFound","exit":8,"message":"..."} (docs/json/error.schema.json).
int ReportError(const Status& s, bool json);
nlohmann::json ErrorJson(const Status& s);

// One JSON document on its own line of stdout, flushed (invalid UTF-8 in names replaced).
void EmitJson(const nlohmann::json& j);

// A marker as every command's --json shows it: engine/report_json.h.
using engine::MarkerJson;

// Exit statuses, the same for every command:
//   0 ok, 1 other failure, 2 bad argument, 3 damaged data (corrupt log, integrity),
//   4 root locked, 5 written by a newer modelsync, 6 no space, 7 network (offline,
//   transient failure after retries), 8 not found / not authorized.
int ExitCodeFor(const Status& s);

// --json and --quiet.
struct OutputFlags {
  bool json = false;
  bool quiet = false;
};
void AddOutputFlags(CLI::App* cmd, OutputFlags* flags);

// --endpoint URL (empty = HF_ENDPOINT or the default hub; checked by engine::CheckEndpoint)
// and, with_token, --token TOKEN (replaces HF_TOKEN for this run; CliEnv() applies it).
void AddEndpointOption(CLI::App* cmd, std::string* endpoint, bool with_token = true);

// The repo argument of a command, read as engine/repo_ref.h reads what people paste: *repo
// becomes org/name (a model id of the root or a catalog name is looked up; how it was read is
// said on stderr unless quiet). A revision in the text (org/name@rev, a /tree/rev URL) goes
// to *revision; kInvalidArgument when the command takes none (revision == nullptr) or when
// --revision was given (revision_given) and says otherwise.
Status ReadRepoArgument(const std::string& root, std::string* repo, std::string* revision,
                        bool revision_given, bool quiet);

// ISO 8601 UTC with seconds, "2026-11-25T20:11:03Z": base/units.h.
using modelsync::FormatTimeMs;

}  // namespace modelsync::cli
