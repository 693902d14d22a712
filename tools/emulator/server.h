// Server: the emulator's two listeners (hub and CDN) on Boost.Asio sockets with Boost.Beast
// request parsing. One thread per connection (blocking I/O), HTTP/1.1 keep-alive. Response
// bodies from files go out with sendfile(2) unless a fault needs to see the bytes, in which
// case they are copied through a 1 MiB buffer (or smaller chunks when throttled).
//
// Thread-safe. Listeners live until the process exits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "emulator/app.h"

namespace modelsync::emulator {

class Server {
 public:
  explicit Server(HubApp& app);
  ~Server();
  // Binds a listener (port 0 = any free port) and starts accepting on its own thread.
  // Returns the bound port.
  Result<uint16_t> Listen(Listener which, const std::string& host, uint16_t port);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelsync::emulator
