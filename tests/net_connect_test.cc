// Connecting to a host's addresses (net/range_conn.h ConnectRace, the range reader's): an
// address that drops the SYN holds the next one back by the attempt delay, not the connect
// deadline; a refused one not at all; the families take turns.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>

#include "net/range_conn.h"
#include "net_hub_support.h"

namespace modelsync::net {
namespace {

using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

// A port where 127.0.0.1 accepts connections (a listener that never accepts: the kernel
// completes the handshake) and 127.0.0.3 drops every SYN (SynDropper).
struct Blackholed {
  Blackholed() {
    for (int tries = 0; tries < 20 && port == 0; ++tries) {
      good = ListenOn("127.0.0.1", 0, 16);
      REQUIRE(good >= 0);
      hole = std::make_unique<SynDropper>("127.0.0.3", PortOf(good));
      if (!hole->ok) {
        ::close(good);
        continue;
      }
      port = PortOf(good);
    }
    REQUIRE(port != 0);
  }
  ~Blackholed() { ::close(good); }
  int good = -1, port = 0;
  std::unique_ptr<SynDropper> hole;
};

struct Outcome {
  boost::system::error_code error;
  bool connected = false;
  tcp::endpoint endpoint;
  std::chrono::steady_clock::duration took{};
};

// Races endpoints on a loop of its own for at most `limit`; the outcome, or none if the race
// had not ended by then.
std::optional<Outcome> Race(std::vector<tcp::endpoint> endpoints, std::chrono::milliseconds delay,
                            std::chrono::seconds limit = std::chrono::seconds(5)) {
  boost::asio::io_context io;
  std::optional<Outcome> out;
  const auto t0 = std::chrono::steady_clock::now();
  auto race = ConnectRace::Start(io, std::move(endpoints), delay,
                                 [&](const boost::system::error_code& e,
                                     std::unique_ptr<Conn> conn, const tcp::endpoint& ep) {
                                   out = Outcome{e, conn != nullptr, ep,
                                                 std::chrono::steady_clock::now() - t0};
                                 });
  const auto deadline = t0 + limit;
  while (!out && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(20));
  race->Cancel();
  return out;
}

tcp::endpoint Ep(const char* addr, int port) {
  return tcp::endpoint(make_address(addr), static_cast<unsigned short>(port));
}

TEST_CASE("connecting: an address that drops the SYN holds the next back by the attempt "
          "delay, not the connect deadline") {
  Blackholed b;
  // Without a race this would wait on 127.0.0.3 until the caller's deadline: the SYN is
  // dropped, then dropped again on every retransmit.
  auto out = Race({Ep("127.0.0.3", b.port), Ep("127.0.0.1", b.port)}, std::chrono::milliseconds(200));
  REQUIRE(out.has_value());
  CHECK_FALSE(out->error);
  CHECK(out->connected);
  CHECK(out->endpoint == Ep("127.0.0.1", b.port));
  CHECK(out->took >= std::chrono::milliseconds(150));  // the first address had its turn
}

TEST_CASE("connecting: a refused address goes to the next at once; all refused is the last "
          "error") {
  Blackholed b;
  const int closed = ListenOn("127.0.0.4", 0, 1);
  REQUIRE(closed >= 0);
  const int free_port = PortOf(closed);
  ::close(closed);  // nothing listens there now: refused
  auto out = Race({Ep("127.0.0.4", free_port), Ep("127.0.0.1", b.port)}, std::chrono::seconds(30));
  REQUIRE(out.has_value());
  CHECK(out->connected);
  CHECK(out->endpoint == Ep("127.0.0.1", b.port));
  CHECK(out->took < std::chrono::seconds(3));  // not the 30 s attempt delay
  auto none = Race({Ep("127.0.0.4", free_port), Ep("127.0.0.5", free_port)},
                   std::chrono::milliseconds(200));
  REQUIRE(none.has_value());
  CHECK_FALSE(none->connected);
  CHECK(none->error == boost::asio::error::connection_refused);
}

TEST_CASE("connecting: Cancel ends every attempt and calls nobody") {
  Blackholed b;
  boost::asio::io_context io;
  bool called = false;
  auto race = ConnectRace::Start(io, {Ep("127.0.0.3", b.port), Ep("127.0.0.3", b.port)},
                                 std::chrono::milliseconds(50),
                                 [&](const boost::system::error_code&, std::unique_ptr<Conn>,
                                     const tcp::endpoint&) { called = true; });
  io.run_for(std::chrono::milliseconds(200));
  CHECK(race->started() == 2);  // both tried: neither answered within the delay
  race->Cancel();
  io.run_for(std::chrono::milliseconds(100));
  CHECK_FALSE(called);
  io.restart();
  CHECK(io.poll() == 0);  // nothing left pending: the attempts' waits ended with the cancel
}

TEST_CASE("connecting: addresses given for a host, as curl's --resolve") {
  const std::vector<std::string> resolve = {"other:443:10.0.0.9",
                                            "CDN.example:443:[2001:db8::1],127.0.0.1",
                                            "bad:443:127.0.0.1,not-an-address"};
  auto given = GivenAddresses(resolve, "cdn.example", "443");
  REQUIRE(given.has_value());
  CHECK(*given == std::vector<tcp::endpoint>{Ep("2001:db8::1", 443), Ep("127.0.0.1", 443)});
  CHECK_FALSE(GivenAddresses(resolve, "cdn.example", "80").has_value());  // another port
  CHECK_FALSE(GivenAddresses(resolve, "cdn", "443").has_value());
  REQUIRE(GivenAddresses(resolve, "bad", "443").has_value());
  CHECK(GivenAddresses(resolve, "bad", "443")->empty());  // refused, not half used
}

TEST_CASE("connecting: the families take turns from the first address's") {
  auto v4 = [](const char* a) { return Ep(a, 443); };
  const std::vector<tcp::endpoint> in = {v4("::1"), v4("2001:db8::1"), v4("2001:db8::2"),
                                         v4("127.0.0.1"), v4("10.0.0.1")};
  const std::vector<tcp::endpoint> want = {v4("::1"), v4("127.0.0.1"), v4("2001:db8::1"),
                                           v4("10.0.0.1"), v4("2001:db8::2")};
  CHECK(Interleaved(in) == want);
  CHECK(Interleaved({v4("127.0.0.1"), v4("10.0.0.1")}) ==
        std::vector<tcp::endpoint>{v4("127.0.0.1"), v4("10.0.0.1")});
  CHECK(Interleaved({}).empty());
}

}  // namespace
}  // namespace modelsync::net
