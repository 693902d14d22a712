// Shared helpers for the storage and engine tests: temp dirs, sample events, raw LMDB edits.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "proto/events.pb.h"

namespace modelsync::testing {

// A fresh directory under /tmp, removed on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ms_test_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

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
