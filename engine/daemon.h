// Daemon: keeps every tracked repo (engine/watch.h) current, unattended.
//
// One daemon per root: Start() takes <root>/.modelsync/daemon.lock (flock, holding the pid);
// a second daemon gets kLocked "root <path> is in use by pid N". The daemon does not hold the
// root's writer lock between passes: each sync is an engine::Pull, which takes it for the
// pass (so `pull`/`track` from a shell wait at most one pull).
//
// Schedule: each repo is synced every RepoTracked.every_ms (0 = only at start and on
// sync-now) with +-10% jitter. A failed sync retries after every_ms * 2^(failures-1), capped
// at max(max_backoff, every_ms), with jitter; the next success resets it. The log gets one
// line per change of a repo's state (failing, the failure's code changing, recovered, updated),
// never one per try.
//
// Control socket <root>/.modelsync/daemon.sock (Unix stream, mode 0600), one request line
// per connection, one JSON reply: "status" -> StatusJson(); "sync-now" -> replies once a
// full pass that started after the request has finished (the status then, with "pass"
// results); "rate BYTES_PER_S" -> sets the bandwidth cap. See engine/DAEMON.md.
//
// Threads: Run() on the caller's thread (it runs the pulls); one control-socket thread.
// Stop(), Reload(), SyncNow() only store atomics: safe from a signal handler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "engine/pull.h"
#include "engine/watch.h"

namespace modelsync::engine {

struct DaemonOptions {
  std::string root;
  uint64_t max_rate = 0;   // bytes/s shared by every transfer; 0 = unlimited
  int max_downloads = 0;   // parallel fetches per pull; 0 = Pull's default
  std::chrono::milliseconds max_backoff{std::chrono::hours(1)};
  // One line per event of note; priority as syslog (3 err, 4 warning, 6 info). Never holds
  // a token or a URL's query string. Called from Run()'s thread and the control thread.
  std::function<void(int priority, const std::string& line)> log;
};

// The Pull options a tracked repo syncs with.
PullOptions TrackedPullOptions(const std::string& root, const Tracking& t);

// One tracked repo brought up to date, as the daemon and `sync` do: Pull(po); for a repo
// tracked with convert, its files are chosen first (PickConvertSource: po.include) and the
// pulled source is converted after (ConvertModel with skip_if_converted: nothing is done
// when the converted model was made from this commit already). up_to_date is false when
// either changed something; *converted (may be null) is set when a conversion ran.
Result<PullSummary> PullTracked(const Env& env, PullOptions po, const Tracking& t,
                                PullObserver* observer, bool* converted = nullptr);

// Removes URL query strings and hf_ tokens from a message meant for a log.
std::string RedactForLog(const std::string& message);

class Daemon {
 public:
  // Takes the daemon lock and binds the control socket. kLocked when another daemon runs.
  // env: the world (its pointers must outlive the daemon); the schedule runs on env.clock and
  // its jitter comes from env.random.
  static Result<std::unique_ptr<Daemon>> Start(const Env& env, DaemonOptions options);
  ~Daemon();

  // Runs until Stop(); returns OK after a stop (in-flight transfers cancelled, their synced
  // bytes recorded), or the error that made the watch list unreadable at start.
  Status Run();

  void Stop() { stop_.store(true); }
  void Reload() { reload_.store(true); }
  void SyncNow() { sync_now_.fetch_add(1); }
  void SetMaxRate(uint64_t bytes_per_second) { max_rate_.store(bytes_per_second); }

  std::string StatusJson();

  // Rounds of the schedule completed: each looked at env.clock and ran every pass that was
  // due. Counted after the round acted, so a test that moves a fake clock and waits for two
  // more rounds knows the schedule has seen the new time, without sleeping.
  uint64_t ScheduleRounds();

  struct Impl;

 private:
  Daemon(const Env& env, DaemonOptions options);
  DaemonOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reload_{false};
  std::atomic<uint64_t> sync_now_{0};
  std::atomic<uint64_t> max_rate_{0};
  std::unique_ptr<Impl> impl_;
};

// Client side of the control socket: sends one request line, returns the reply. kNotFound
// when no daemon listens on root (no socket, or nobody accepting).
Result<std::string> DaemonRequest(const std::string& root, const std::string& request);

}  // namespace modelsync::engine
