#include "net/curl_multi.h"

#include <poll.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <vector>

namespace modelsync::net {

namespace asio = boost::asio;

struct CurlMulti::SocketWatch {
  SocketWatch(asio::io_context& io, curl_socket_t s) : fd(s), sd(io, s) {}
  ~SocketWatch() { Detach(); }
  // Stops watching now, even if a running handler still holds this watch: curl may watch
  // the same (still open) fd again at once, and Asio must not have it registered twice.
  // release(), never close(): the socket is curl's.
  void Detach() {
    removed = true;
    if (!sd.is_open()) return;
    boost::system::error_code ec;
    sd.cancel(ec);
    sd.release();
  }
  curl_socket_t fd;
  asio::posix::stream_descriptor sd;
  int want = 0;  // CURL_POLL_IN / CURL_POLL_OUT bits
  bool read_armed = false;
  bool write_armed = false;
  bool removed = false;
};

CurlMulti::CurlMulti(asio::io_context& io, int max_connections) : io_(io), timer_(io) {
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::SocketCallback);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::TimerCallback);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  long n = max_connections > 0 ? max_connections : 16;
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, n);
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, n);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, n);
}

CurlMulti::~CurlMulti() { Shutdown(); }

void CurlMulti::Shutdown() {
  if (multi_ == nullptr) return;
  *alive_ = false;
  for (auto& [easy, owner] : owners_) curl_multi_remove_handle(multi_, easy);
  owners_.clear();
  curl_multi_cleanup(multi_);  // closes cached connections; may call SocketCallback(REMOVE)
  multi_ = nullptr;
  for (auto& [fd, w] : watches_) w->Detach();
  watches_.clear();
  boost::system::error_code ec;
  timer_.cancel(ec);
}

CURLMcode CurlMulti::Add(CURL* easy, Owner* owner) {
  owners_[easy] = owner;
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) owners_.erase(easy);
  return rc;
}

void CurlMulti::Remove(CURL* easy) {
  if (multi_ == nullptr) return;
  if (owners_.erase(easy) > 0) curl_multi_remove_handle(multi_, easy);
}

void CurlMulti::Unpause(CURL* easy) {
  if (multi_ == nullptr || owners_.count(easy) == 0) return;
  curl_easy_pause(easy, CURLPAUSE_CONT);
  // Unpausing may have finished the transfer (buffered data was all there was).
  DrainDone();
}

int CurlMulti::SocketCallback(CURL*, curl_socket_t s, int what, void* userp, void*) {
  static_cast<CurlMulti*>(userp)->OnSocket(s, what);
  return 0;
}

int CurlMulti::TimerCallback(CURLM*, long timeout_ms, void* userp) {
  static_cast<CurlMulti*>(userp)->OnTimer(timeout_ms);
  return 0;
}

void CurlMulti::OnSocket(curl_socket_t s, int what) {
  auto it = watches_.find(s);
  if (what == CURL_POLL_REMOVE) {
    if (it != watches_.end()) {
      it->second->Detach();  // pending waits end aborted
      watches_.erase(it);
    }
    return;
  }
  if (it == watches_.end()) {
    it = watches_.emplace(s, std::make_shared<SocketWatch>(io_, s)).first;
  }
  auto& w = it->second;
  w->want = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) w->want |= CURL_POLL_IN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) w->want |= CURL_POLL_OUT;
  Arm(w);
}

void CurlMulti::OnTimer(long timeout_ms) {
  if (timeout_ms < 0) {
    boost::system::error_code ec;
    timer_.cancel(ec);
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  if (timeout_ms == 0) {
    // Never call curl from inside its own callback: run the timeout from the loop.
    asio::post(io_, [this, alive] {
      auto a = alive.lock();
      if (a && *a) Action(CURL_SOCKET_TIMEOUT, 0);
    });
    return;
  }
  timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    auto a = alive.lock();
    if (ec || !a || !*a) return;
    Action(CURL_SOCKET_TIMEOUT, 0);
  });
}

namespace {
bool ReadyNow(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (events | POLLERR | POLLHUP)) != 0;
}
}  // namespace

void CurlMulti::Arm(const std::shared_ptr<SocketWatch>& w) {
  std::weak_ptr<SocketWatch> weak = w;
  auto arm_one = [&](int flag, bool& armed, asio::posix::stream_descriptor::wait_type type,
                     short poll_event) {
    if ((w->want & flag) == 0 || armed) return;
    armed = true;
    if (ReadyNow(w->fd, poll_event)) {
      asio::post(io_, [this, weak, flag] {
        if (auto sw = weak.lock()) OnReady(sw, flag);
      });
    } else {
      w->sd.async_wait(type, [this, weak, flag](const boost::system::error_code& ec) {
        auto sw = weak.lock();
        if (!sw) return;
        if (ec == asio::error::operation_aborted) {
          (flag == CURL_POLL_IN ? sw->read_armed : sw->write_armed) = false;
          return;
        }
        OnReady(sw, flag);
      });
    }
  };
  arm_one(CURL_POLL_IN, w->read_armed, asio::posix::stream_descriptor::wait_read, POLLIN);
  arm_one(CURL_POLL_OUT, w->write_armed, asio::posix::stream_descriptor::wait_write, POLLOUT);
}

void CurlMulti::OnReady(const std::shared_ptr<SocketWatch>& w, int flag) {
  (flag == CURL_POLL_IN ? w->read_armed : w->write_armed) = false;
  if (w->removed || multi_ == nullptr) return;
  if ((w->want & flag) == 0) return;  // curl lost interest while the wait was pending
  Action(w->fd, flag == CURL_POLL_IN ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
  if (!w->removed) Arm(w);
}

void CurlMulti::Action(curl_socket_t s, int flags) {
  if (multi_ == nullptr) return;
  int running = 0;
  curl_multi_socket_action(multi_, s, flags, &running);
  DrainDone();
}

void CurlMulti::DrainDone() {
  if (multi_ == nullptr) return;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    // Copy the message before removing its handle: removal invalidates it.
    CURL* easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    auto it = owners_.find(easy);
    Owner* owner = it == owners_.end() ? nullptr : it->second;
    if (it != owners_.end()) owners_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    if (owner != nullptr) owner->OnTransferDone(easy, result);
    if (multi_ == nullptr) return;
  }
}

}  // namespace modelsync::net
