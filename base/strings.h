// Small string helpers every layer shares.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace modelsync {

// s without leading and trailing spaces, tabs, CRs and LFs.
inline std::string_view TrimSpace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

// s with A-Z made a-z and every other byte kept (not the C locale's tolower: header names,
// hosts and hex digits are ASCII whatever the process's locale).
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// A '/'-separated path split at its last slash: {"a/b", "c"} for "a/b/c", {"", "c"} for "c".
inline std::pair<std::string, std::string> SplitLeaf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace modelsync
