// Shared helpers for the storage and engine tests: temp dirs, whole-file reads/writes by
// path (tests only; the code under test goes through storage::FileSystem), sample events,
// forked children.
#pragma once

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "proto/events.pb.h"
#include "support/temp_dir.h"

namespace modelsync::testing {

// n bytes from a seeded generator: the same for the same seed.
inline std::string Pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

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

// One event of every kind, with every field set (the manifest big enough to be compressed).
std::vector<modelsync::v1::Event> OneOfEachKind();

// A RangesCommitted event (the hot event of a download).
modelsync::v1::Event Ranges(uint64_t transfer, uint64_t begin, uint64_t end, int64_t time_ms);

// Runs fn in a forked child whose exit status is fn's return value (99 if it threw); returns
// the child's pid. The child never returns into the test framework.
template <typename Fn>
pid_t ForkChild(Fn fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = fn();
    } catch (...) {
    }
    ::_exit(rc);
  }
  return pid;
}

// waitpid for pid: exit code, or 128+signal.
inline int WaitChild(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

}  // namespace modelsync::testing
