#include "support/cli_process.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace modelsync::testing {
namespace {


void ApplyEnv(const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (v == "\x01unset") ::unsetenv(k.c_str());
    else ::setenv(k.c_str(), v.c_str(), 1);
  }
}

[[noreturn]] void Exec(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string path = CliPath();
  argv.push_back(path.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(path.c_str(), argv.data());
  std::fprintf(stderr, "exec %s: %s\n", path.c_str(), std::strerror(errno));
  ::_exit(127);
}

std::string ReadAll(int fd) {
  std::string s;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

}  // namespace

std::string CliPath() {
  const char* b = std::getenv("MODELSYNC_BUILD_DIR");
  return std::string(b ? b : "build") + "/cli/modelsync";
}

pid_t SpawnCliInTerminal(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env, int* master) {
  winsize ws{};
  ws.ws_row = 24;
  ws.ws_col = 120;
  pid_t pid = ::forkpty(master, nullptr, nullptr, &ws);
  if (pid == 0) {
    ApplyEnv(env);
    ::setenv("TERM", "xterm", 1);
    Exec(args);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env) {
  char out_t[] = "/tmp/ms_cli_out_XXXXXX", err_t[] = "/tmp/ms_cli_err_XXXXXX";
  int out_fd = ::mkstemp(out_t), err_fd = ::mkstemp(err_t);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ApplyEnv(env);
    Exec(args);
  }
  CliResult r;
  r.exit_code = WaitExit(pid);
  ::lseek(out_fd, 0, SEEK_SET);
  ::lseek(err_fd, 0, SEEK_SET);
  r.out = ReadAll(out_fd);
  r.err = ReadAll(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  ::unlink(out_t);
  ::unlink(err_t);
  return r;
}

pid_t SpawnCli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
               const std::string& out_path, const std::string& err_path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_path.empty() ? "/dev/null" : out_path.c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_path.empty() ? "/dev/null" : err_path.c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ApplyEnv(env);
    Exec(args);
  }
  return pid;
}

}  // namespace modelsync::testing
