// CurlMulti: libcurl's multi_socket interface driven by a Boost.Asio io_context, the way
// curl's docs/examples/multi-uv.c does it (internal to net/).
//
// - A SocketWatch per socket, created on the first CURLMOPT_SOCKETFUNCTION call for it and
//   destroyed exactly on CURL_POLL_REMOVE. Asio wraps the fd in a stream_descriptor that
//   is release()d before destruction, so Asio never closes a socket curl owns. Wait handlers
//   hold a weak_ptr to the watch.
// - Asio's epoll reactor is edge-triggered; curl expects level-triggered readiness. Before
//   re-arming, a watch polls the fd with a zero timeout and, if it is still ready, posts the
//   action instead of waiting for an edge that may never come.
// - One non-repeating steady_timer for CURLMOPT_TIMERFUNCTION; a 0 timeout is post()ed.
// - Nothing here calls into curl from inside a curl callback: the socket and timer
//   callbacks only touch Asio objects.
// - After every curl_multi_socket_action, completed transfers are read with
//   curl_multi_info_read (each CURLMsg copied before its handle is removed), removed, and
//   reported to their Owner.
//
// Thread safety: none. Every member, and every Owner callback, runs on the io_context's
// (single) thread.
#pragma once

#include <curl/curl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <unordered_map>

namespace modelsync::net {

class CurlMulti {
 public:
  // Gets the result of a transfer after its handle has left the multi handle.
  class Owner {
   public:
    virtual void OnTransferDone(CURL* easy, CURLcode result) = 0;

   protected:
    ~Owner() = default;
  };

  CurlMulti(boost::asio::io_context& io, int max_connections);
  ~CurlMulti();  // removes any handle still added (no Owner callback), cleans up
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // Starts a configured easy handle. The handle stays owned by the caller; owner is called
  // once when it completes, unless Remove() came first.
  CURLMcode Add(CURL* easy, Owner* owner);
  // Transfers added and not finished yet (running or waiting for a connection).
  size_t live() const { return owners_.size(); }
  // Stops a transfer now; no Owner callback. Safe for handles not added.
  void Remove(CURL* easy);
  // Resumes a transfer paused by CURL_WRITEFUNC_PAUSE (from outside curl's callbacks).
  void Unpause(CURL* easy);

  // Removes every transfer and closes every connection (curl_multi_cleanup) while the loop
  // still runs, so socket watches are released in order. Idempotent.
  void Shutdown();

 private:
  struct SocketWatch;
  static int SocketCallback(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int TimerCallback(CURLM* multi, long timeout_ms, void* userp);
  void OnSocket(curl_socket_t s, int what);
  void OnTimer(long timeout_ms);
  void Arm(const std::shared_ptr<SocketWatch>& w);
  void OnReady(const std::shared_ptr<SocketWatch>& w, int flag);
  void Action(curl_socket_t s, int flags);
  void DrainDone();

  boost::asio::io_context& io_;
  CURLM* multi_ = nullptr;
  boost::asio::steady_timer timer_;
  std::unordered_map<curl_socket_t, std::shared_ptr<SocketWatch>> watches_;
  std::unordered_map<CURL*, Owner*> owners_;
  // Guards the posted zero-timeout actions against running after Shutdown().
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace modelsync::net
