// Validation of names that come from the network or the user before any file-system call
// (DESIGN.md invariant 5). A path that passes ValidateRepoPath can be created below a model
// directory component by component with storage::OpenDirPath/Dir::OpenFile and cannot
// escape it: every component is a plain name.
//
// Every error is kInvalidArgument and names the offending path (control characters shown
// as '?', long names cut) and the rule it broke.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace modelsync::engine {

inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxComponentBytes = 255;
inline constexpr size_t kMaxRepoPartBytes = 96;

// A repo-relative file path from the hub ("a/b/model.safetensors"). Refused: empty; longer
// than 4096 bytes; absolute (leading '/'); a backslash; NUL or any control character
// (0x00-0x1f, 0x7f); invalid UTF-8; an empty component ("a//b", trailing '/'); a "." or ".."
// component; a component over 255 bytes.
Status ValidateRepoPath(std::string_view path);

// The deepest listing path accepted (components): deeper ones are refused before any fetch,
// since the directory walks stop there.
inline constexpr size_t kMaxPathDepth = 64;

// The components of a path that passed ValidateRepoPath.
std::vector<std::string_view> PathComponents(std::string_view valid_path);

// A repo id "org/name" as the hub allows it: exactly one '/', each part 1-96 characters of
// [A-Za-z0-9._-], starting and ending with a letter, digit or '_', no "--" or "..", and the
// name not ending in ".git". (The hub's legacy ids without an org are refused: the layout is
// models/<org>/<name>.)
Status ValidateRepoId(std::string_view repo);

// A model id, the marker file's name directly under the root: one component of 1-255 bytes,
// no '/', '\\', NUL or control characters, not starting with '.', and not "models" (the
// name of the models directory).
Status ValidateModelId(std::string_view id);

// Printable form of an untrusted name for messages (control chars as '?', cut at 200 bytes).
std::string ShowName(std::string_view s);

// ASCII letters lowered: how a case-insensitive file system (macOS APFS, Windows) compares
// names. (Unicode case folding and normalisation are not applied.)
std::string FoldCase(std::string_view s);

// kInvalidArgument naming both when two of the (valid) paths, or two directories they make,
// differ only in the case of ASCII letters (on a case-insensitive file system they would be
// one file, so one of them would silently hold the other's bytes), or when a path is both a
// file and a directory of another path.
Status CheckCaseCollisions(const std::vector<std::string>& paths, std::string_view where);

}  // namespace modelsync::engine
