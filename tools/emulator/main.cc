// hub_emulator: a Hugging Face-compatible hub (and its CDN) over loopback, serving fixture
// repos with fault injection. See tools/EMULATOR.md.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "emulator/app.h"
#include "emulator/server.h"

using namespace modelsync::emulator;

int main(int argc, char** argv) {
  CLI::App cli{"Hugging Face hub emulator (hub + CDN listeners) for modelsync tests"};
  AppConfig cfg;
  std::string host = "127.0.0.1", cdn_host = "127.0.0.2";
  uint16_t port = 0, cdn_port = 0;
  int threads = 0;
  cli.add_option("--repos", cfg.repos_dir, "Directory of fixture repos (make_fixtures --out)")
      ->required();
  cli.add_option("--host", host, "Hub listen address");
  cli.add_option("--port", port, "Hub port (0 = any free port)");
  cli.add_option("--cdn-host", cdn_host, "CDN listen address (must differ from --host)");
  cli.add_option("--cdn-port", cdn_port, "CDN port (0 = any free port)");
  cli.add_option("--page-size", cfg.page_size, "Tree listing page size");
  cli.add_flag("--resolve-cache", cfg.resolve_cache,
               "Regular files: relative 307 to /api/resolve-cache/");
  cli.add_option("--token", cfg.token, "Token approved for gated and private repos");
  cli.add_option("--threads", threads,
                 "Accepted for compatibility; each connection has its own thread");
  CLI11_PARSE(cli, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);

  HubApp app(cfg);
  if (auto s = app.Load(); !s.ok()) {
    std::fprintf(stderr, "hub_emulator: cannot load repos: %s\n", s.ToString().c_str());
    return 1;
  }
  Server server(app);
  auto hub = server.Listen(Listener::kHub, host, port);
  if (!hub.ok()) {
    std::fprintf(stderr, "hub_emulator: %s\n", hub.status().ToString().c_str());
    return 1;
  }
  auto cdn = server.Listen(Listener::kCdn, cdn_host, cdn_port);
  if (!cdn.ok()) {
    std::fprintf(stderr, "hub_emulator: %s\n", cdn.status().ToString().c_str());
    return 1;
  }
  std::string hub_url = "http://" + host + ":" + std::to_string(*hub);
  std::string cdn_url = "http://" + cdn_host + ":" + std::to_string(*cdn);
  app.SetUrls(hub_url, cdn_url);
  std::printf("{\"hub\":\"%s\",\"cdn\":\"%s\"}\n", hub_url.c_str(), cdn_url.c_str());
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
}
