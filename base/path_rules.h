// The one set of rules for names that come from the network or the user, before any of them
// reaches the file system or the log (DESIGN.md invariant 5). net checks every listing path
// with ValidateRepoPath before it returns a listing, the engine again before a fact is
// recorded, and storage's Dir checks each component it is given with ComponentProblem (the
// structural part: what could escape a directory), so a path that passed ValidateRepoPath can
// be created below a model directory component by component and cannot leave it.
//
// Errors are kInvalidArgument and name the offending path (control characters shown as '?',
// long names cut) and the rule it broke. Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace modelsync {

inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxComponentBytes = 255;
// The deepest listing path accepted (components): deeper ones are refused before any fetch,
// since the directory walks stop there.
inline constexpr size_t kMaxPathDepth = 64;

// Why a single name cannot be a directory entry (empty, "." or "..", over 255 bytes, a '/'
// or a NUL), or nullptr when it can.
const char* ComponentProblem(std::string_view name);

// A repo-relative file path from the hub ("a/b/model.safetensors"). Refused: empty; longer
// than 4096 bytes; absolute (leading '/'); a backslash; NUL or any control character
// (0x00-0x1f, 0x7f); invalid UTF-8; any component ComponentProblem refuses.
Status ValidateRepoPath(std::string_view path);

// The components of a path that passed ValidateRepoPath.
std::vector<std::string_view> PathComponents(std::string_view valid_path);

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool ValidUtf8(std::string_view s);
// 0x00-0x1f or 0x7f.
bool IsControl(char c);

// Printable form of an untrusted name for messages (control chars as '?', cut at 200 bytes).
std::string ShowName(std::string_view s);

}  // namespace modelsync
