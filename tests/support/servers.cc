#include "support/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace modelsync::testing {

int Shell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool Accepts(int port, const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool MakeTestCertificates(const std::string& dir) {
  const std::string mk =
      "cd '" + dir + "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj '/CN=modelsync test CA' && "
      "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=127.0.0.1' && "
      "printf 'subjectAltName=IP:127.0.0.1\\n' > ip.cnf && "
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ip.cnf && "
      "printf 'subjectAltName=DNS:other.example\\n' > dns.cnf && "
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out other.pem "
      "-days 2 -extfile dns.cnf && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 2 "
      "-subj '/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1' && "
      "mkdir -p cadir && cp ca.pem cadir/ && openssl rehash cadir";
  return Shell("(" + mk + ") >/dev/null 2>&1") == 0;
}

ServerProcess::ServerProcess(const std::vector<std::string>& argv, const std::string& log,
                             int port, const std::string& cwd) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Accepts(port)) {
      ready_ = true;
      break;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it died: no point waiting
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 250; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

Nginx::Nginx(const std::string& dir, const std::string& http_body, int port) : dir_(dir) {
  Shell("mkdir -p '" + dir + "/tmp'");
  std::ofstream conf(dir + "/nginx.conf");
  // As root, workers would run as nobody and could not reach a 0700 test directory.
  if (::geteuid() == 0) conf << "user root;\n";
  conf << "daemon off;\nworker_processes 1;\npid " << dir << "/nginx.pid;\n"
       << "error_log " << dir << "/error.log info;\n"
       << "events { worker_connections 1024; }\n"
       << "http {\n"
       << "  log_format t '$connection $connection_requests $server_protocol $status $msec "
          "$request_time $upstream_cache_status $sent_http_content_encoding \"$request\" $http_range';\n"
       << "  access_log " << dir << "/access.log t;\n"
       << "  client_body_temp_path " << dir << "/tmp/body;\n"
       << "  proxy_temp_path " << dir << "/tmp/proxy;\n"
       << "  fastcgi_temp_path " << dir << "/tmp/fastcgi;\n"
       << "  uwsgi_temp_path " << dir << "/tmp/uwsgi;\n"
       << "  scgi_temp_path " << dir << "/tmp/scgi;\n"
       << http_body << "\n}\n";
  conf.close();
  process_ = std::make_unique<ServerProcess>(
      std::vector<std::string>{"nginx", "-p", dir, "-c", dir + "/nginx.conf", "-e",
                               dir + "/error.log"},
      dir + "/stderr.log", port);
}

Tinyproxy::Tinyproxy(const std::string& dir, const std::vector<std::string>& extra)
    : dir_(dir), port_(FreePort()) {
  std::ofstream conf(dir + "/tinyproxy.conf");
  conf << "Port " << port_ << "\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\n"
       << "LogFile \"" << dir << "/tinyproxy.log\"\nLogLevel Info\n";
  for (const auto& line : extra) conf << line << "\n";
  conf.close();
  process_ = std::make_unique<ServerProcess>(
      std::vector<std::string>{"tinyproxy", "-d", "-c", dir + "/tinyproxy.conf"},
      dir + "/stderr.log", port_);
  // The readiness probe's connection is logged by a worker, a moment later: wait for it, so
  // that counts taken from here on are exact.
  for (int i = 0; i < 200 && process_->ready() && Connections() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {
int CountLines(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}
}  // namespace

int Tinyproxy::Connections() const {
  return CountLines(dir_ + "/tinyproxy.log", "Connect (file descriptor");
}

int Tinyproxy::Requests() const {
  return CountLines(dir_ + "/tinyproxy.log", "Request (file descriptor");
}

}  // namespace modelsync::testing
