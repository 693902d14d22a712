// A fresh directory for one test, removed recursively on destruction: the only TempDir of
// the suite (tests/test_util.h and tests/support/emulator.h both hand it out).
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

namespace modelsync::testing {

class TempDir {
 public:
  // kDisk: under $TMPDIR (or /tmp). kFast: on /dev/shm when there is one (tmpfs: fsync is
  // free, so loops of hundreds of scenarios stay fast; tmpfs has hard links and
  // RENAME_EXCHANGE like ext4).
  enum Where { kDisk, kFast };
  explicit TempDir(Where where = kDisk) {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    if (where == kFast && std::filesystem::is_directory("/dev/shm", ec)) base = "/dev/shm";
    std::string tmpl = (base / "modelsync-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::fprintf(stderr, "TempDir: mkdtemp failed for %s\n", tmpl.c_str());
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

}  // namespace modelsync::testing
