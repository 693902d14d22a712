// Internal to the daemon (daemon.cc): the per-root daemon lock and the control socket.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/fs.h"
#include "base/status.h"

namespace modelsync::engine {

// flock on <root>/.modelsync/daemon.lock, which holds the owner's pid. kLocked "root <root>
// is in use by pid N" when another process holds it. Released when the fd closes.
Result<UniqueFd> TakeDaemonLock(const std::string& root);

// <root>/.modelsync/daemon.sock
std::string DaemonSocketPath(const std::string& root);

// Listens on the socket (mode 0600; a stale socket file is replaced: the caller holds the
// daemon lock) and answers each connection's request line with handler(line) on its own
// thread; a finished connection's thread is joined at once, and past kMaxControlConnections
// in flight a connection is answered {"error":"busy..."}. The destructor stops accepting,
// joins and removes the socket file (handlers must return once the daemon stops).
inline constexpr size_t kMaxControlConnections = 64;

class ControlServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;
  static Result<std::unique_ptr<ControlServer>> Listen(const std::string& path, Handler handler);
  ~ControlServer();

  struct Impl;

 private:
  ControlServer() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelsync::engine
