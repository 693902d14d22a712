// A wrong command line: what every command prints and returns for it.
//
// Every argument error (unknown command or option, missing or malformed value, value out of
// range) exits 2 with one line saying what was wrong, a "did you mean" for a near miss of a
// command or an option, the command's usage line, and where its help is. Under --json the
// same error is also one JSON object on stdout (cli/common.h ReportError).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace modelsync::cli {

// The candidate closest to `word` when it is a near miss (a small edit distance for its
// length, or a unique prefix of at least 3 characters); "" when none is close.
std::string NearestName(const std::string& word, const std::vector<std::string>& candidates);

// The command line (without argv[0]) with the options typed before the command's name moved
// after it, where the command's own parser reads them, when every one of them is an option of
// that command (with its value): `modelsync --root R pull X` is `modelsync pull --root R X`,
// `modelsync --json status` is `modelsync status --json`. Anything else (an unknown option,
// -h or -V, which are modelsync's own) is left where it is for the parser to report.
std::vector<std::string> HoistGlobalOptions(const std::vector<std::string>& args,
                                            const CLI::App& app);

// Prints a failed parse as described above and returns 2. args: the command line as typed
// (without argv[0]).
int ReportParseError(CLI::App& app, const CLI::ParseError& e,
                     const std::vector<std::string>& args, bool json);

// `modelsync help [COMMAND]`.
void RegisterHelp(CLI::App& app, int* exit_code);

}  // namespace modelsync::cli
