#include "cli/common.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace modelsync::cli {

std::string DefaultRoot() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/modelsync";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/modelsync";
}

void AddRootOption(CLI::App* cmd, std::string* root) {
  *root = DefaultRoot();
  cmd->add_option("--root", *root,
                  "The modelsync root (models/, markers and .modelsync/ live here).\n"
                  "Default: $MODELSYNC_ROOT, else $XDG_DATA_HOME/modelsync, else\n"
                  "~/.local/share/modelsync")
      ->envname("MODELSYNC_ROOT")
      ->type_name("DIR");
}

int ReportError(const Status& s) {
  std::fprintf(stderr, "modelsync: %s\n", s.message().c_str());
  switch (s.code()) {
    case StatusCode::kCorruption:
    case StatusCode::kIntegrity:
      return 3;
    case StatusCode::kLocked:
      return 4;
    case StatusCode::kVersion:
      return 5;
    default:
      return 1;
  }
}

std::string FormatTimeMs(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace modelsync::cli
