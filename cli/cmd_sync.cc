// `modelsync sync`: one pass over every tracked repo (for cron and systemd timers), or with
// --now, ask the running daemon for an immediate pass.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "engine/daemon.h"
#include "engine/pull.h"
#include "engine/watch.h"

namespace modelsync::cli {
namespace {

int SyncThroughDaemon(const std::string& reply, const OutputFlags& flags) {
  nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.contains("last_pass")) {
    std::fprintf(stderr, "modelsync sync: the daemon answered something unexpected: %s\n", reply.c_str());
    return 1;
  }
  int code = 0;
  for (const auto& r : j["last_pass"]) {
    bool ok = r.value("ok", false);
    if (!ok) code = 7;
    if (flags.json) {
      nlohmann::json out = r;
      out["via"] = "daemon";
      std::printf("%s\n", out.dump().c_str());
    } else if (!flags.quiet || !ok) {
      std::printf("%s: %s (via the daemon, pid %d)\n", r.value("repo", "").c_str(),
                  ok ? (r.value("up_to_date", false) ? "up to date" : "updated")
                     : ("failed: " + r.value("message", "")).c_str(),
                  j.value("pid", 0));
    }
  }
  return code;
}

// Per-repo progress on a terminal: a bar labelled with the repo, and the lock wait said.
class SyncProgress final : public engine::PullObserver {
 public:
  SyncProgress(const std::string& repo, bool enabled, bool quiet)
      : bar_(repo, enabled), quiet_(quiet) {}
  void OnWaitingForLock(const std::string& message) override {
    if (!quiet_) std::fprintf(stderr, "%s\n", message.c_str());
  }
  void OnProgress(uint64_t done, uint64_t total, uint64_t files_done,
                  uint64_t files_total) override {
    bar_.Update(done, total, files_done, files_total);
  }
  void Finish() { bar_.Finish(); }

 private:
  ProgressBar bar_;
  bool quiet_;
};

}  // namespace

void RegisterSync(CLI::App& app, CliContext& ctx) {
  auto root = std::make_shared<std::string>();
  auto flags = std::make_shared<OutputFlags>();
  auto now = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "sync", "Bring every tracked repo up to date once (resolve, update when needed).");
  cmd->add_flag("--now", *now,
                "If a daemon runs on the root, ask it for an immediate pass instead of waiting for its lock");
  AddRootOption(cmd, root.get());
  AddOutputFlags(cmd, flags.get());
  cmd->footer("Exit status: 0 every tracked repo is current; non-zero otherwise (see modelsync pull).");
  cmd->callback([root, flags, now, &ctx] {
    if (*now) {
      auto reply = engine::DaemonRequest(*root, "sync-now");
      if (reply.ok()) {
        ctx.exit_code = SyncThroughDaemon(*reply, *flags);
        return;
      }
      if (!reply.status().IsNotFound()) {
        ctx.exit_code = ReportError(reply.status(), flags->json);
        return;
      }
    }
    if (Status rs = CheckReadRoot(*root); !rs.ok()) {
      ctx.exit_code = ReportError(rs, flags->json);
      return;
    }
    auto list = engine::ListTracked(CliEnv(), *root);
    if (!list.ok()) {
      ctx.exit_code = ReportError(list.status(), flags->json);
      return;
    }
    int code = 0;
    Interrupts interrupts;
    for (const auto& t : *list) {
      engine::PullOptions po = engine::TrackedPullOptions(*root, t);
      po.cancel = interrupts.flag();
      SyncProgress progress(t.repo, !flags->json && !flags->quiet && ProgressWanted(),
                            flags->quiet || flags->json);
      bool converted = false;
      auto r = engine::PullTracked(CliEnv(), po, t, &progress, &converted);
      progress.Finish();
      if (!r.ok() && r.status().IsCancelled() && interrupts.signal() != 0) {
        if (flags->json)
          std::printf("%s\n", nlohmann::json({{"event", "interrupted"}, {"repo", t.repo},
                                    {"signal", interrupts.SignalName()},
                                    {"exit", interrupts.ExitCode()}})
                                  .dump()
                                  .c_str());
        else
          std::fprintf(stderr,
                       "interrupted (%s) while syncing %s: what was fetched is kept; run the "
                       "same command to resume\n",
                       interrupts.SignalName().c_str(), t.repo.c_str());
        ctx.exit_code = interrupts.ExitCode();
        return;
      }
      if (flags->json) {
        nlohmann::json j = {{"repo", t.repo}, {"ok", r.ok()}};
        if (r.ok()) {
          j.update({{"commit", r->commit}, {"up_to_date", r->up_to_date && !r->offline},
                    {"checked", !r->offline}, {"bytes_fetched", r->bytes_fetched},
                    {"converted", converted}});
        } else {
          j.update({{"code", std::string(StatusCodeName(r.status().code()))}, {"message", r.status().message()}});
        }
        std::printf("%s\n", j.dump().c_str());
      } else if (r.ok() && r->offline) {
        if (!flags->quiet)
          std::printf("%s: not checked (offline): complete at %s as far as the log knows\n",
                      t.repo.c_str(), r->commit.substr(0, 12).c_str());
      } else if (r.ok() && !flags->quiet) {
        std::printf("%s: %s at %s (fetched %s)%s\n", t.repo.c_str(), r->up_to_date ? "up to date" : "updated",
                    r->commit.substr(0, 12).c_str(), FormatBytes(r->bytes_fetched).c_str(),
                    converted ? "; converted into an MLX model again" : "");
      } else if (!r.ok()) {
        std::fprintf(stderr, "modelsync sync: %s: %s\n", t.repo.c_str(), r.status().message().c_str());
      }
      if (!r.ok() && code == 0) code = ExitCodeFor(r.status());
      if (r.ok() && r->offline && code == 0) code = 7;  // current? unknown offline: not 0
    }
    if (list->empty() && !flags->json && !flags->quiet) std::printf("nothing is tracked (modelsync track ORG/NAME)\n");
    ctx.exit_code = code;
  });
}

}  // namespace modelsync::cli
