// Test support: real servers a test starts on loopback and stops by their pid (nginx,
// tinyproxy, openssl s_server), a test certificate authority, free ports.
//
// Each server runs in the foreground as a child of the test, its output in a log file in its
// directory; the destructor sends SIGTERM and reaps it (SIGKILL after 5 s). Not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace modelsync::testing {

// Runs a shell command; its exit status (-1 when it did not exit normally).
int Shell(const std::string& cmd);

// A free TCP port on 127.0.0.1 (bound and released: the server started next takes it).
int FreePort();

// Whether something accepts TCP connections on host:port.
bool Accepts(int port, const std::string& host = "127.0.0.1");

// Writes, in dir: ca.pem / ca.key (a test CA), srv.pem / srv.key (127.0.0.1, signed by it),
// other.pem (the same key, for DNS:other.example only), self.pem / self.key (self-signed for
// 127.0.0.1) and cadir/ (ca.pem, hashed for SSL_CERT_DIR). False when openssl failed.
bool MakeTestCertificates(const std::string& dir);

class ServerProcess {
 public:
  // Starts argv[0] (looked up in PATH) in `cwd` ("" = here); stdout and stderr go to log.
  // Then waits (at most 10 s) until 127.0.0.1:port accepts connections.
  ServerProcess(const std::vector<std::string>& argv, const std::string& log, int port,
                const std::string& cwd = "");
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

// nginx from Debian, as this user, with its whole state in `dir`: `http_body` goes inside
// the http { } block (server blocks, upstreams, caches). access.log in dir logs
// "$connection $connection_requests $server_protocol $status $msec $request_time
// $upstream_cache_status $sent_http_content_encoding \"$request\"".
class Nginx {
 public:
  Nginx(const std::string& dir, const std::string& http_body, int port);
  bool ready() const { return process_ && process_->ready(); }
  std::string access_log() const { return dir_ + "/access.log"; }
  std::string error_log() const { return dir_ + "/error.log"; }

 private:
  std::string dir_;
  std::unique_ptr<ServerProcess> process_;
};

// tinyproxy from Debian on 127.0.0.1:port(), in the foreground; `extra` lines are added to
// its configuration ("BasicAuth user pass", "ConnectPort 443", ...).
class Tinyproxy {
 public:
  Tinyproxy(const std::string& dir, const std::vector<std::string>& extra);
  bool ready() const { return process_ && process_->ready(); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Client connections the proxy has accepted so far, from its log (a refused request
  // closes its connection: each attempt is one). The readiness probe is the first.
  int Connections() const;
  // Requests it has read so far (CONNECTs included).
  int Requests() const;

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> process_;
};

}  // namespace modelsync::testing
