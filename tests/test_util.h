// Small helpers shared by the engine/storage tests: a temporary directory that is removed
// afterwards, and whole-file reads/writes by path (tests only; the code under test goes
// through storage::FileSystem).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace modelsync::testing {

class TempDir {
 public:
  // kFast: on /dev/shm when there is one (tmpfs: fsync is free, so loops of hundreds of
  // scenarios stay fast; tmpfs has hard links and RENAME_EXCHANGE like ext4).
  enum Where { kDisk, kFast };
  explicit TempDir(Where where = kDisk) {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (where == kFast && std::filesystem::is_directory("/dev/shm")) base = "/dev/shm";
    std::string tmpl = (base / "modelsync-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Spit(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found;
}

}  // namespace modelsync::testing
