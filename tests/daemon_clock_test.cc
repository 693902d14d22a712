// The daemon's schedule in simulated time (issue 14): the daemon runs in-process with a
// FakeClock and a seeded random source in its Env, so backoff and jitter are checked exactly,
// step by step, instead of by watching a real clock for seconds.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "engine/daemon.h"
#include "engine/daemon_control.h"
#include "engine/env.h"
#include "engine/watch.h"
#include "fixtures/fixtures.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// Polls (real time, bounded) until pred holds.
template <typename F>
bool Eventually(F pred) {
  for (int i = 0; i < 400; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(25));
  }
  return pred();
}

// The one tracked repo's entry of the daemon's status ({} before the watch list is read).
json RepoStatus(engine::Daemon& d) {
  json s = json::parse(d.StatusJson());
  return s["repos"].empty() ? json::object() : s["repos"][0];
}

// Stops the daemon and joins its thread however the test ends.
struct Running {
  engine::Daemon& d;
  std::thread t;
  explicit Running(engine::Daemon& daemon) : d(daemon), t([this] { (void)d.Run(); }) {}
  ~Running() { Stop(); }
  void Stop() {
    d.Stop();
    if (t.joinable()) t.join();
  }
};

}  // namespace

TEST_CASE("daemon backoff on a fake clock: 1s, 2s, 4s, 4s (+-10% seeded jitter), one log line, then recovery") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 10;
  fo.only = {"versions"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir root;
  const std::string repo = fixtures::kVersionsRepo;
  engine::Tracking t;
  t.repo = repo;
  t.every_ms = 1000;
  t.endpoint = emu.hub_url();
  REQUIRE(engine::Track(engine::RealEnv(), root.path(), t).ok());
  emu.Stop();  // the hub is down: every pass fails at once (connection refused)

  FakeClock clock;
  Random random(42);
  engine::Env env = engine::RealEnv();
  env.clock = &clock;
  env.random = &random;
  env.config.hub_attempts = 1;
  std::mutex log_mu;
  std::vector<std::string> lines;
  engine::DaemonOptions o;
  o.root = root.path();
  o.max_backoff = std::chrono::seconds(4);
  o.log = [&](int, const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    lines.push_back(line);
  };
  auto d = engine::Daemon::Start(env, o);
  REQUIRE(d.ok());
  Running runner(**d);

  // The first pass runs at once; each later one when the fake clock reaches it.
  const int64_t expect[] = {1000, 2000, 4000, 4000, 4000};
  int failures = 0;
  for (size_t i = 0; i < std::size(expect); ++i) {
    const int64_t base = expect[i];
    REQUIRE(Eventually([&] { return RepoStatus(**d).value("failures", 0) == failures + 1; }));
    ++failures;
    json r = RepoStatus(**d);
    const int64_t next = r["next_in_ms"].get<int64_t>();
    CAPTURE(failures);
    CAPTURE(next);
    CHECK(next >= base * 9 / 10);
    CHECK(next <= base * 11 / 10);
    // Not a moment early: just before it is due, nothing happens.
    clock.Advance(milliseconds(next - 1));
    // Of the rounds that end after this read, the second began after it, so after the move:
    // it saw the new time (and acted, or not).
    const uint64_t rounds = (*d)->ScheduleRounds();
    REQUIRE(Eventually([&] { return (*d)->ScheduleRounds() >= rounds + 2; }));
    CHECK(RepoStatus(**d).value("failures", 0) == failures);
    // Before the last due pass the hub returns: that pass succeeds.
    if (i + 1 == std::size(expect)) REQUIRE(emu.Start().ok());
    clock.Advance(milliseconds(1));
  }
  // Recovered: the schedule goes back to every 1 s.
  REQUIRE(Eventually([&] { return RepoStatus(**d).value("state", "") == "current"; }));
  json r = RepoStatus(**d);
  CHECK(r.value("failures", -1) == 0);
  CHECK(r["next_in_ms"].get<int64_t>() >= 900);
  CHECK(r["next_in_ms"].get<int64_t>() <= 1100);
  runner.Stop();
  std::lock_guard<std::mutex> l(log_mu);
  size_t failed_lines = 0, recovered = 0;
  for (const auto& line : lines) {
    failed_lines += line.find("sync failed") != std::string::npos;
    recovered += line.find("works again") != std::string::npos;
  }
  CHECK(failed_lines == 1);  // once per change of state, not once per try
  CHECK(recovered == 1);

  // The same seed gives the same schedule (a failing run replays exactly).
  Random a(42), b(42);
  CHECK(a.Uniform(0.9, 1.1) == b.Uniform(0.9, 1.1));
}

// A root deeper than a Unix socket address holds (~107 bytes): the daemon listens and its
// clients reach it all the same (a private short link in /tmp during bind and connect), and
// the socket file is where it belongs. Before, both failed with "use a shorter --root", and
// `modelsync status` under such a root could not ask the daemon.
TEST_CASE("a root path longer than a socket address: the daemon listens, clients reach it") {
  TempDir base;
  std::string root = base.path();
  while (root.size() < 140) root += "/a-rather-long-directory-name";
  std::filesystem::create_directories(root);
  REQUIRE(engine::DaemonSocketPath(root).size() > 108);
  engine::DaemonOptions o;
  o.root = root;
  o.log = [](int, const std::string&) {};
  auto d = engine::Daemon::Start(engine::RealEnv(), o);
  REQUIRE(d.ok());
  CHECK(std::filesystem::is_socket(engine::DaemonSocketPath(root)));
  Running runner(**d);
  auto reply = engine::DaemonRequest(root, "status");
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  CHECK(json::parse(*reply, nullptr, false).is_object());
  runner.Stop();
}
