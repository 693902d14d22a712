// `modelsync daemon`: keep every tracked repo current until SIGTERM/SIGINT (engine/daemon.h).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "base/units.h"
#include "cli/commands.h"
#include "engine/daemon.h"

namespace modelsync::cli {
namespace {

engine::Daemon* g_daemon = nullptr;

extern "C" void OnDaemonSignal(int sig) {
  if (!g_daemon) return;
  if (sig == SIGHUP) g_daemon->Reload();
  else g_daemon->Stop();
}

void InstallSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnDaemonSignal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

}  // namespace

void RegisterDaemon(CLI::App& app, CliContext& ctx) {
  struct Opts {
    std::string root, max_rate, max_backoff = "1h";
    int max_downloads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "daemon",
      "Keep every tracked repo current until stopped (SIGTERM/SIGINT; SIGHUP re-reads the watch\n"
      "list). One daemon per root; `modelsync status` shows its live progress.");
  cmd->add_option("--max-rate", o->max_rate, "Bandwidth cap shared by every transfer, e.g. 20MB/s");
  cmd->add_option("--max-downloads", o->max_downloads, "Parallel fetches (default 8)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-backoff", o->max_backoff, "Longest wait between retries of a failing repo")
      ->capture_default_str();
  AddRootOption(cmd, &o->root);
  cmd->footer("Logs go to stderr, one line per event of note (journald reads the <N> priorities).");
  cmd->callback([o, &ctx] {
    engine::DaemonOptions d;
    d.root = o->root;
    d.max_downloads = o->max_downloads;
    if (!o->max_rate.empty()) {
      auto r = ParseRate(o->max_rate);
      if (!r.ok()) {
        ctx.exit_code = ReportError(r.status().With("--max-rate"));
        return;
      }
      d.max_rate = *r;
    }
    auto b = ParseDuration(o->max_backoff);
    if (!b.ok()) {
      ctx.exit_code = ReportError(b.status().With("--max-backoff"));
      return;
    }
    d.max_backoff = *b;
    bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
    d.log = [journald](int prio, const std::string& line) {
      std::string safe = engine::RedactForLog(line);
      if (journald) std::fprintf(stderr, "<%d>%s\n", prio, safe.c_str());
      else std::fprintf(stderr, "modelsync daemon: %s\n", safe.c_str());
      std::fflush(stderr);
    };
    auto daemon = engine::Daemon::Start(CliEnv(), d);
    if (!daemon.ok()) {
      ctx.exit_code = ReportError(daemon.status());
      return;
    }
    g_daemon = daemon->get();
    InstallSignals();
    Status s = (*daemon)->Run();
    g_daemon = nullptr;
    daemon->reset();
    if (!s.ok()) ctx.exit_code = ReportError(s);
  });
}

}  // namespace modelsync::cli
