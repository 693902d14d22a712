#include "engine/daemon_control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <list>
#include <thread>
#include <vector>

#include "base/platform.h"
#include "engine/daemon.h"
#include "storage/root_lock.h"

namespace modelsync::engine {
namespace {

// Reads one '\n'-terminated line (without it) or up to EOF; gives up after timeout_ms.
Result<std::string> ReadLine(int fd, int timeout_ms) {
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Transient("the daemon's control socket timed out");
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "read from the daemon's control socket");
    if (r == 0) return out;
    out.append(buf, static_cast<size_t>(r));
    if (auto nl = out.find('\n'); nl != std::string::npos) return out.substr(0, nl);
    if (out.size() > (1u << 20)) return Status::Corruption("control message too long");
  }
}

Status SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = platform::SendNoSignal(fd, s.data() + off, s.size() - off);
    if (w == -EINTR) continue;
    if (w < 0) return Status::FromErrno(static_cast<int>(-w), "write to the daemon's control socket");
    off += static_cast<size_t>(w);
  }
  return Status::Ok();
}

// sockaddr_un holds ~107 bytes of path (104 on Darwin); a root can be deeper than that.
// Calls fn with the address of `path`: the path itself when it fits, else the same socket
// reached through a symlink to its directory in a fresh private directory under /tmp (mode
// 0700, so nobody else can swap the link), removed again when fn returns. bind() and
// connect() follow the link, so the socket file itself stays where it belongs.
Status WithAddress(const std::string& path, const std::function<Status(const sockaddr_un&)>& fn) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() < sizeof a.sun_path) {
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return fn(a);
  }
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return Status::InvalidArgument("control socket path " + path + " is too long");
  char tmpl[] = "/tmp/modelsync-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    return Status::FromErrno(errno, "control socket path " + path + " is longer than " +
                                        std::to_string(sizeof a.sun_path - 1) +
                                        " bytes, and a short link to it in /tmp cannot be made");
  const std::string dir = tmpl, link = dir + "/d";
  const std::string dir_of = slash == 0 ? "/" : path.substr(0, slash);
  const std::string short_path = link + path.substr(slash);
  Status s = Status::Ok();
  if (::symlink(dir_of.c_str(), link.c_str()) != 0) {
    s = Status::FromErrno(errno, "link " + link + " to " + dir_of);
  } else {
    std::memcpy(a.sun_path, short_path.c_str(), short_path.size() + 1);
    s = fn(a);
    ::unlink(link.c_str());
  }
  ::rmdir(dir.c_str());
  return s;
}

}  // namespace

std::string DaemonSocketPath(const std::string& root) { return root + "/.modelsync/daemon.sock"; }

Result<UniqueFd> TakeDaemonLock(const std::string& root) {
  MS_RETURN_IF_ERROR(MakeDirs(root + "/.modelsync"));
  std::string path = root + "/.modelsync/daemon.lock";
  MS_ASSIGN_OR_RETURN(UniqueFd fd, storage::OpenLockFile(path, 0600));
  if (int e = platform::LockExclusive(fd.get(), false); e != 0) {
    if (e != EWOULDBLOCK) return Status::FromErrno(e, "lock " + path);
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    int pid = n > 0 ? std::atoi(buf) : 0;
    return Status::Locked("root " + root + " is in use by pid " + std::to_string(pid) +
                          " (a modelsync daemon is running there; stop it first, or use " +
                          "`modelsync sync --now` to ask it for a pass)", pid);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
    return Status::FromErrno(errno, "write " + path);
  return fd;
}

struct ControlServer::Impl {
  UniqueFd listen_fd;
  std::string path;
  Handler handler;
  std::atomic<bool> stop{false};
  std::thread acceptor;
  // One thread per connection in flight (a sync-now waits for a whole pass); each is joined
  // by the acceptor once it has finished, so a daemon polled all day keeps a handful.
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Worker> workers;  // acceptor thread only

  void Reap() {
    for (auto it = workers.begin(); it != workers.end();) {
      if (!it->done.load()) {
        ++it;
        continue;
      }
      it->thread.join();
      it = workers.erase(it);
    }
  }

  void Loop() {
    while (!stop.load()) {
      Reap();
      pollfd p{listen_fd.get(), POLLIN, 0};
      int n = ::poll(&p, 1, 100);
      if (n <= 0) continue;
      int c = platform::AcceptCloexec(listen_fd.get());
      if (c < 0) continue;
      if (workers.size() >= kMaxControlConnections) {
        UniqueFd conn(c);
        (void)SendAll(conn.get(), R"({"error":"busy: too many control requests in flight"})" "\n");
        continue;
      }
      Worker& w = workers.emplace_back();
      w.thread = std::thread([this, c, &w] {
        UniqueFd conn(c);
        auto line = ReadLine(conn.get(), 2000);
        if (line.ok()) (void)SendAll(conn.get(), handler(*line) + "\n");
        w.done.store(true);
      });
    }
    for (auto& w : workers) w.thread.join();
    workers.clear();
  }
};

Result<std::unique_ptr<ControlServer>> ControlServer::Listen(const std::string& path,
                                                             Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->handler = std::move(handler);
  const int sock = platform::SocketCloexec(AF_UNIX, SOCK_STREAM);
  if (sock < 0) return Status::FromErrno(-sock, "create the control socket");
  impl->listen_fd.Reset(sock);
  ::unlink(path.c_str());
  MS_RETURN_IF_ERROR(WithAddress(path, [&](const sockaddr_un& addr) {
    mode_t old = ::umask(077);  // the socket file is created 0600
    int rc = ::bind(impl->listen_fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::umask(old);
    return rc == 0 ? Status::Ok() : Status::FromErrno(err, "bind the control socket " + path);
  }));
  if (::chmod(path.c_str(), 0600) != 0) return Status::FromErrno(errno, "chmod " + path);
  if (::listen(impl->listen_fd.get(), 16) != 0)
    return Status::FromErrno(errno, "listen on " + path);
  std::unique_ptr<ControlServer> server(new ControlServer());
  server->impl_ = std::move(impl);
  Impl* i = server->impl_.get();
  i->acceptor = std::thread([i] { i->Loop(); });
  return server;
}

ControlServer::~ControlServer() {
  impl_->stop.store(true);
  impl_->acceptor.join();  // joins every connection's thread before it returns
  ::unlink(impl_->path.c_str());
}

Result<std::string> DaemonRequest(const std::string& root, const std::string& request) {
  std::string path = DaemonSocketPath(root);
  const int s = platform::SocketCloexec(AF_UNIX, SOCK_STREAM);
  if (s < 0) return Status::FromErrno(-s, "create a socket");
  UniqueFd fd(s);
  MS_RETURN_IF_ERROR(WithAddress(path, [&](const sockaddr_un& addr) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
      return Status::Ok();
    if (errno == ENOENT || errno == ECONNREFUSED)
      return Status::NotFound("no modelsync daemon runs on " + root);
    return Status::FromErrno(errno, "connect to " + path);
  }));
  MS_RETURN_IF_ERROR(SendAll(fd.get(), request + "\n"));
  // sync-now waits for a whole pass: no practical limit.
  return ReadLine(fd.get(), request == "sync-now" ? 24 * 3600 * 1000 : 10000);
}

}  // namespace modelsync::engine
