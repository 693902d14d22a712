// Never leave the user in silence (issues 15 and 16), through the real binary: Ctrl-C at a
// terminal and SIGTERM stop at once and say what is kept; retries, stalls and a held root are
// said; --token stays in memory; TLS trust comes from the variables people already set and
// failures name their cause.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/platform.h"
#include "cli_test_util.h"
#include "storage/root_lock.h"
#include "support/servers.h"

using namespace modelsync;
using namespace modelsync::testing;
using namespace modelsync::testing::cli;
using nlohmann::json;

TEST_CASE("Ctrl-C at a terminal: the bar stops, the kept bytes are named, exit 130, resume") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 16u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                          {"throttle_bps", 400000}}})
              .ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},   {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},         {"HF_HUB_OFFLINE", "\x01unset"},
                {"MODELSYNC_CHUNK_BYTES", "1MiB"}, {"MODELSYNC_SMALL_FILE_BYTES", "1MiB"},
                {"HF_HUB_DISABLE_PROGRESS_BARS", "\x01unset"}};
  int master = -1;
  // 4 connections at 400 KB/s each: 16 MiB take ~10 s.
  pid_t pid = SpawnCliInTerminal({"pull", kModel, "--connections", "4"}, env, &master);
  REQUIRE(pid > 0);
  std::string screen;
  auto read_some = [&](int ms) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) return false;
    screen.append(buf, static_cast<size_t>(n));
    return true;
  };
  // Wait until the bar has drawn real progress (MiB moving, 2 s in).
  auto start = std::chrono::steady_clock::now();
  while (screen.find(" MiB/") == std::string::npos ||
         std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2000)) {
    read_some(100);
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(20)) break;
  }
  INFO(screen);
  REQUIRE(screen.find(" MiB/") != std::string::npos);
  CHECK(screen.find("pull [") != std::string::npos);  // a bar, because this is a terminal
  const size_t before_ctrl_c = screen.size();
  REQUIRE(::write(master, "\x03", 1) == 1);
  auto pressed = std::chrono::steady_clock::now();
  while (read_some(2000)) {
  }
  int code = WaitExit(pid);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - pressed).count();
  ::close(master);
  std::string after = screen.substr(before_ctrl_c);
  INFO(after);
  CHECK(code == 130);
  CHECK(took < 2.5);  // within a second when idle; slack for a loaded CI machine
  CHECK(after.find("interrupted (SIGINT): ") != std::string::npos);
  CHECK(after.find(" kept; run the same command to resume") != std::string::npos);
  // The bar stopped: nothing is drawn after the message.
  CHECK(after.find("pull [", after.find("interrupted")) == std::string::npos);

  // What the log keeps is what the message said, and the next pull does not fetch it again.
  auto st = RunCli({"status", kModel, "--json"}, env);
  auto lines = JsonLines(st.out);
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0]["repos"].size() == 1);
  uint64_t kept = lines[0]["repos"][0]["bytes_done"].get<uint64_t>();
  uint64_t total = lines[0]["repos"][0]["bytes_total"].get<uint64_t>();
  CHECK(kept >= (1u << 20));
  CHECK(kept < total);
  REQUIRE(emu.SetFaults(json::array()).ok());
  auto again = RunCli({"pull", kModel, "--json"}, env);
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  uint64_t fetched = 0;
  for (const auto& j : JsonLines(again.out))
    if (j.value("event", "") == "done") fetched = j["bytes_fetched"].get<uint64_t>();
  CHECK(fetched + kept <= total);
  CHECK(fetched + kept >= total - (1u << 20));  // small files kept whole or not at all
}

TEST_CASE("never silent: a Retry-After wait, a lost connection and a held root are said") {
  Hub hub;
  TempDir root;
  EnvMap env = hub.Env(root.path());
  env["MODELSYNC_SMALL_FILE_BYTES"] = "16KiB";
  REQUIRE(hub.emu
              .SetFaults({{{"match", "config.json"}, {"listener", "hub"}, {"times", 1},
                           {"status_sequence", {429}}, {"retry_after", 1}},
                          {{"match", "model.safetensors"}, {"listener", "cdn"}, {"times", 1},
                           {"drop_after_bytes", 20000}}})
              .ok());
  auto r = RunCli({"pull", kModel, "--json"}, env);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  bool asked = false, resumed = false;
  for (const auto& j : JsonLines(r.out)) {
    if (j.value("event", "") != "retry") continue;
    std::string m = j["message"];
    if (m.find("the hub asked to wait 1.0 s (HTTP 429, rate limited) before retrying") == 0) {
      asked = true;
      CHECK(j["delay_ms"] == 1000);
      CHECK(j["retry_at"].get<std::string>().size() == 8);  // HH:MM:SS
      CHECK(m.find("config.json") != std::string::npos);
    }
    if (m.find("connection lost during") == 0 && m.find("resuming where it stopped") != std::string::npos)
      resumed = m.find("model.safetensors") != std::string::npos;
  }
  CHECK(asked);
  CHECK(resumed);

  // In text, on stderr, with when the wait ends.
  TempDir root2;
  EnvMap env2 = hub.Env(root2.path());
  REQUIRE(hub.emu
              .SetFaults({{{"match", "config.json"}, {"listener", "hub"}, {"times", 1},
                           {"status_sequence", {503}}, {"retry_after", 1}}})
              .ok());
  r = RunCli({"pull", kModel}, env2);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("the hub asked to wait 1.0 s (HTTP 503, service unavailable)") !=
        std::string::npos);
  CHECK(r.err.find("; retrying at ") != std::string::npos);

  // A command that waits for the root's lock says who holds it.
  REQUIRE(hub.emu
              .SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                           {"throttle_bps", 20000}}})
              .ok());
  TempDir root3;
  EnvMap env3 = hub.Env(root3.path());
  pid_t pull = SpawnCli({"pull", kModel, "--quiet"}, env3, "", root3.path() + "/pull.err");
  auto lock_held = [&] { return storage::RootLock::Holder(root3.path()) == pull; };
  REQUIRE(WaitFor(lock_held, 5));
  pid_t gc = SpawnCli({"gc"}, env3, "", root3.path() + "/gc.err");
  std::string said;
  WaitFor(
      [&] {
        std::ifstream in(root3.path() + "/gc.err");
        said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        return said.find("waiting") != std::string::npos;
      },
      5);
  ::kill(gc, SIGKILL);
  ::kill(pull, SIGKILL);
  WaitExit(gc);
  WaitExit(pull);
  // The holder's command is named where the platform knows it (not on posix: PLATFORM.md).
  const std::string holder = std::string(platform::Name()) == "posix"
                                 ? ""
                                 : " (modelsync pull " + std::string(kModel) + " --quiet)";
  CHECK(said.find("root " + root3.path() + " is in use by pid " + std::to_string(pull) + holder +
                  "; waiting for it to finish") != std::string::npos);
}

TEST_CASE("--token reaches the hub for this run only and is written nowhere") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 10;
  fo.only = {"gated"};
  FixtureDir fx(fo);
  const std::string token = "hf_cli_test_token_0123456789";
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), token, 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()}, {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
                {"HF_HOME", root.path() + "/.hf-home"}};
  auto without = RunCli({"pull", fixtures::kGatedRepo}, env);
  CHECK(without.exit_code == 8);
  auto with = RunCli({"pull", fixtures::kGatedRepo, "--token", token, "--json"}, env);
  INFO(with.err);
  CHECK(with.exit_code == 0);
  CHECK(with.out.find(token) == std::string::npos);
  CHECK(with.err.find(token) == std::string::npos);
  // The endpoint is plain HTTP: the user is told, once, that the token travels in cleartext.
  size_t warnings = 0;
  for (const auto& j : JsonLines(with.out))
    if (j.value("event", "") == "warning" &&
        j["message"].get<std::string>().find("cleartext") != std::string::npos)
      ++warnings;
  CHECK(warnings == 1);
  // Nothing under the root holds it (the log, the index, the lock, the model files).
  auto grep = RunCli({"log", "--json"}, env);
  CHECK(grep.out.find(token) == std::string::npos);
  std::string line = "grep -rqF '" + token + "' '" + root.path() + "'";
  CHECK(std::system(line.c_str()) != 0);
}

TEST_CASE("a hub that stops sending is reported within the stall timeout") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 4u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"}, {"times", 1},
                          {"stall_after_bytes", 100000}, {"stall_ms", 30000}}})
              .ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},   {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},         {"HF_HUB_OFFLINE", "\x01unset"},
                {"MODELSYNC_STALL_TIMEOUT", "1s"}, {"MODELSYNC_SMALL_FILE_BYTES", "1MiB"},
                {"MODELSYNC_CHUNK_BYTES", "8MiB"}};
  auto start = std::chrono::steady_clock::now();
  auto r = RunCli({"pull", kModel, "--json"}, env);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.out, r.err);
  CHECK(r.exit_code == 0);
  CHECK(took < 10);  // not the 30 s the hub stayed silent
  bool said = false;
  for (const auto& j : JsonLines(r.out))
    if (j.value("event", "") == "retry" &&
        j["message"].get<std::string>().find("stalled") != std::string::npos)
      said = true;
  CHECK(said);
}

TEST_CASE("SIGTERM during sync: stops at once, says so, exit 143, the next sync resumes") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 8u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                          {"throttle_bps", 500000}}})
              .ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},   {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},         {"HF_HUB_OFFLINE", "\x01unset"},
                {"MODELSYNC_CHUNK_BYTES", "1MiB"}, {"MODELSYNC_SMALL_FILE_BYTES", "1MiB"}};
  REQUIRE(RunCli({"track", kModel}, env).exit_code == 0);
  std::string out = root.path() + "/sync.out";
  pid_t pid = SpawnCli({"sync", "--json"}, env, out, root.path() + "/sync.err");
  // Mid-transfer: a first range of the weights (8 MiB at 500 kB/s) is committed to the log.
  REQUIRE(WaitFor(
      [&] {
        return RunCli({"log", "--json"}, env).out.find("\"RangesCommitted\"") !=
               std::string::npos;
      },
      20));
  auto sent = std::chrono::steady_clock::now();
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int code = WaitExit(pid);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  CHECK(code == 143);
  CHECK(took < 2.5);  // within a second when idle; slack for a loaded CI machine
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto lines = JsonLines(text);
  REQUIRE(!lines.empty());
  CHECK(lines.back()["event"] == "interrupted");
  CHECK(lines.back()["signal"] == "SIGTERM");
  CHECK(lines.back()["repo"] == kModel);
  CHECK(lines.back()["exit"] == 143);
  REQUIRE(emu.SetFaults(json::array()).ok());
  auto again = RunCli({"sync", "--json"}, env);
  INFO(again.out, again.err);
  CHECK(again.exit_code == 0);
  auto done = JsonLines(again.out);
  REQUIRE(done.size() == 1);
  CHECK(done[0]["ok"] == true);
  CHECK(done[0]["bytes_fetched"].get<uint64_t>() < (8u << 20));  // resumed, not restarted
}

namespace {

// `openssl s_server -WWW` on 127.0.0.1 with a certificate; stopped by its pid.
struct TlsServer {
  // mode "-WWW": files as text/plain bodies; "-HTTP": each file is a whole raw HTTP response.
  TlsServer(const std::string& dir, const std::string& cert, const std::string& key,
            const char* mode = "-WWW")
      : port(FreePort()),
        process({"openssl", "s_server", "-quiet", mode, "-accept",
                 "127.0.0.1:" + std::to_string(port), "-cert", cert, "-key", key},
                "/dev/null", port, dir) {}
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
  int port = 0;
  ServerProcess process;
};

}  // namespace

TEST_CASE("TLS: a private CA from SSL_CERT_FILE & co. or --ca-bundle; failures name their cause") {
  TempDir d;
  const std::string p = d.path();
  // A CA, a server certificate for 127.0.0.1 it signed, one for another name, a self-signed one.
  REQUIRE(MakeTestCertificates(p));
  const std::string ca = p + "/ca.pem";
  EnvMap base = {{"MODELSYNC_ROOT", p + "/root"},     {"HF_TOKEN", "\x01unset"},
                 {"HF_HUB_OFFLINE", "\x01unset"},     {"CURL_CA_BUNDLE", "\x01unset"},
                 {"REQUESTS_CA_BUNDLE", "\x01unset"}, {"SSL_CERT_FILE", "\x01unset"},
                 {"SSL_CERT_DIR", "\x01unset"},       {"MODELSYNC_HUB_ATTEMPTS", "1"}};
  auto pull = [&](const TlsServer& s, EnvMap extra, std::vector<std::string> more = {}) {
    EnvMap env = base;
    for (const auto& [k, v] : extra) env[k] = v;
    env["HF_ENDPOINT"] = s.url();
    std::vector<std::string> args = {"pull", "org/name"};
    args.insert(args.end(), more.begin(), more.end());
    return RunCli(args, env);
  };
  {
    TlsServer srv(p, p + "/srv.pem", p + "/srv.key");
    REQUIRE(Accepts(srv.port));
    // Not trusted: the cause in libcurl's words, and how to supply a CA.
    auto r = pull(srv, {});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("TLS failure") != std::string::npos);
    CHECK(r.err.find("unable to get local issuer certificate") != std::string::npos);
    CHECK(r.err.find("SSL_CERT_FILE") != std::string::npos);
    // Trusted through each variable, and the flag: the TLS handshake passes (this server is
    // no hub, so what fails next is its answer, not TLS).
    for (const auto& var : std::vector<std::pair<std::string, std::string>>{
             {"SSL_CERT_FILE", ca},
             {"CURL_CA_BUNDLE", ca},
             {"REQUESTS_CA_BUNDLE", ca},
             {"SSL_CERT_DIR", p + "/cadir"}}) {
      const std::string& name = var.first;  // INFO captures it (not a structured binding)
      const std::string& value = var.second;
      auto t = pull(srv, {{name, value}});
      INFO(name, ": ", t.err);
      CHECK(t.err.find("TLS failure") == std::string::npos);
      CHECK(t.err.find("not valid JSON") != std::string::npos);
    }
    auto flag = pull(srv, {}, {"--ca-bundle", ca});
    INFO(flag.err);
    CHECK(flag.err.find("TLS failure") == std::string::npos);
    CHECK(flag.err.find("not valid JSON") != std::string::npos);
    // A variable naming no file is an argument error, named.
    auto bad = pull(srv, {{"SSL_CERT_FILE", p + "/missing.pem"}});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("SSL_CERT_FILE") != std::string::npos);
  }
  {
    TlsServer srv(p, p + "/other.pem", p + "/srv.key");  // trusted CA, wrong name
    auto r = pull(srv, {{"SSL_CERT_FILE", ca}});
    INFO(r.err);
    CHECK(r.err.find("TLS failure") != std::string::npos);
    CHECK(r.err.find("no alternative certificate subject name matches") != std::string::npos);
  }
  {
    TlsServer srv(p, p + "/self.pem", p + "/self.key");
    auto r = pull(srv, {});
    INFO(r.err);
    CHECK(r.err.find("TLS failure") != std::string::npos);
    CHECK(r.err.find("self-signed certificate") != std::string::npos);
  }
  {
    // An https hub that redirects to plain http: refused, naming the flag; nothing is fetched
    // from the http side (nothing listens there either: a request would be a connection error).
    std::string www = p + "/www/api/models/org/name/revision";
    REQUIRE(Shell("mkdir -p '" + www + "'") == 0);
    std::ofstream(www + "/main") << "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/x\r\n"
                                    "Content-Length: 0\r\n\r\n";
    TlsServer srv(p + "/www", p + "/srv.pem", p + "/srv.key", "-HTTP");
    auto r = pull(srv, {{"SSL_CERT_FILE", ca}});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("refusing the redirect from https://127.0.0.1") != std::string::npos);
    CHECK(r.err.find("--allow-insecure-redirects") != std::string::npos);
    auto allowed = pull(srv, {{"SSL_CERT_FILE", ca}}, {"--allow-insecure-redirects"});
    INFO(allowed.err);
    CHECK(allowed.err.find("refusing the redirect") == std::string::npos);
    CHECK(allowed.err.find("127.0.0.1:9") != std::string::npos);  // it went there, and failed
  }
}

