#include "engine/daemon.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <thread>

#include "base/fs.h"
#include "base/units.h"
#include "engine/daemon_control.h"
#include "engine/gguf_convert.h"
#include "engine/watch.h"
#include "engine/journal.h"
#include "engine/root_path.h"

namespace modelsync::engine {
namespace {

using std::chrono::milliseconds;
using nlohmann::json;
using TimePoint = Clock::TimePoint;

struct Entry {
  Tracking t;
  TimePoint next;
  int failures = 0;
  std::string last_error;
  int last_code = 0;  // StatusCode of the last failure
  std::string commit;
  int64_t last_ok_ms = 0;
  int64_t last_try_ms = 0;
};

}  // namespace

std::string RedactForLog(const std::string& message) {
  static const std::regex query(R"((https?://[^\s?#'"]*)\?[^\s'"]*)");
  static const std::regex token(R"(hf_[A-Za-z0-9]{6,})");
  return std::regex_replace(std::regex_replace(message, query, "$1?<redacted>"), token,
                            "hf_<redacted>");
}

// Whether the log tracks repo now (a read-only look; false when the log cannot be read is
// never assumed: an unreadable log keeps the entry).
static bool StillTracked(const std::string& root, const std::string& repo) {
  auto j = Journal::Open(root, true);
  if (!j.ok()) return true;
  auto it = (*j)->state().repos.find(repo);
  return it != (*j)->state().repos.end() && it->second.tracked;
}

PullOptions TrackedPullOptions(const std::string& root, const Tracking& t) {
  PullOptions o;
  o.root = root;
  o.repo = t.repo;
  o.revision = t.ref.empty() ? "main" : t.ref;
  o.model_id = t.model_id;
  o.include = t.include;
  o.exclude = t.exclude;
  o.endpoint = t.endpoint;
  return o;
}

Result<PullSummary> PullTracked(const Env& env, PullOptions po, const Tracking& t,
                                PullObserver* observer, bool* converted) {
  if (converted) *converted = false;
  if (!t.convert) return Pull(env, po, observer);
  MS_ASSIGN_OR_RETURN(ConvertSource src, PickConvertSource(env, po.root, po.repo, po.revision, po.endpoint,
                                                           t.convert_file));
  po.include = src.include;
  po.exclude.clear();
  po.any_format = true;
  po.model_id.clear();
  MS_ASSIGN_OR_RETURN(PullSummary pulled, Pull(env, po, observer));
  ConvertModelOptions co = ConvertPulledOptions(po.root, pulled.repo, pulled.commit, pulled.model_dir,
                                                src.torch ? "" : src.file, t.converted_id,
                                                po.endpoint.empty() ? env.config.endpoint : po.endpoint,
                                                static_cast<int>(t.quantize_bits));
  co.cancel = po.cancel;
  MS_ASSIGN_OR_RETURN(ConvertModelResult c, ConvertModel(env, co));
  if (!c.up_to_date) {
    pulled.up_to_date = false;
    if (converted) *converted = true;
  }
  return pulled;
}

struct Daemon::Impl {
  explicit Impl(const Env& e) : env(e) {}
  Env env;
  UniqueFd lock;
  std::unique_ptr<ControlServer> control;

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::map<std::string, Entry> entries;
  std::string current_repo;
  uint64_t bytes_done = 0, bytes_total = 0;
  std::string waiting;  // of current_repo's pass; "" while it moves
  uint64_t passes_served = 0;  // sync-now generation served by the last full pass
  uint64_t rounds = 0;         // ScheduleRounds()
  json last_pass = json::array();
};

Daemon::Daemon(const Env& env, DaemonOptions options)
    : options_(std::move(options)), impl_(new Impl(env)) {
  max_rate_.store(options_.max_rate);
}

Daemon::~Daemon() {
  stop_.store(true);
  impl_->control.reset();
}

Result<std::unique_ptr<Daemon>> Daemon::Start(const Env& env, DaemonOptions options) {
  MS_ASSIGN_OR_RETURN(options.root, ResolveRoot(env, options.root, /*create=*/true));
  if (!options.log) options.log = [](int, const std::string&) {};
  std::unique_ptr<Daemon> d(new Daemon(env, std::move(options)));
  MS_ASSIGN_OR_RETURN(d->impl_->lock, TakeDaemonLock(d->options_.root));
  Daemon* self = d.get();
  MS_ASSIGN_OR_RETURN(d->impl_->control,
                      ControlServer::Listen(DaemonSocketPath(d->options_.root),
                                            [self](const std::string& req) -> std::string {
                                              if (req == "status") return self->StatusJson();
                                              if (req == "reload") {
                                                self->Reload();
                                                return self->StatusJson();
                                              }
                                              if (req == "sync-now") {
                                                uint64_t gen = self->sync_now_.fetch_add(1) + 1;
                                                std::unique_lock<std::mutex> l(self->impl_->mu);
                                                self->impl_->cv.notify_all();
                                                self->impl_->cv.wait(l, [&] {
                                                  return self->impl_->passes_served >= gen ||
                                                         self->stop_.load();
                                                });
                                                l.unlock();
                                                return self->StatusJson();
                                              }
                                              if (req.rfind("rate ", 0) == 0) {
                                                auto r = ParseRate(req.substr(5));
                                                if (!r.ok())
                                                  return json{{"error", r.status().message()}}.dump();
                                                self->SetMaxRate(*r);
                                                return self->StatusJson();
                                              }
                                              return json{{"error", "unknown request: " + req}}.dump();
                                            }));
  return d;
}

std::string Daemon::StatusJson() {
  std::lock_guard<std::mutex> l(impl_->mu);
  json j = {{"daemon", true}, {"pid", ::getpid()}, {"root", options_.root},
            {"max_rate", max_rate_.load()}, {"state", impl_->current_repo.empty() ? "idle" : "syncing"}};
  if (!impl_->current_repo.empty()) {
    j["current"] = {{"repo", impl_->current_repo}, {"bytes_done", impl_->bytes_done},
                    {"bytes_total", impl_->bytes_total}};
    if (!impl_->waiting.empty()) j["current"]["waiting"] = impl_->waiting;
  }
  json repos = json::array();
  auto now = impl_->env.clock->Now();
  for (const auto& [name, e] : impl_->entries) {
    json r = {{"repo", name}, {"ref", e.t.ref}, {"model_id", e.t.model_id},
              {"every_ms", e.t.every_ms}, {"failures", e.failures},
              {"state", e.failures ? "failing" : (e.last_ok_ms ? "current" : "pending")},
              {"next_in_ms", nullptr}};
    // A repo with no next check (--every 0 after a success) has none: null, never a huge number.
    if (e.next != TimePoint::max())
      r["next_in_ms"] =
          std::max<int64_t>(0, std::chrono::duration_cast<milliseconds>(e.next - now).count());
    if (!e.commit.empty()) r["commit"] = e.commit;
    if (e.last_ok_ms) r["last_ok_ms"] = e.last_ok_ms;
    if (!e.last_error.empty()) r["last_error"] = e.last_error;
    repos.push_back(std::move(r));
  }
  j["repos"] = std::move(repos);
  j["last_pass"] = impl_->last_pass;
  return j.dump();
}

namespace {

// Progress of the pull in flight, for StatusJson().
// What the pass of one repo is doing, for `status`: bytes, and what it waits for (the root's
// lock a user's command holds, or a retry the hub asked for), cleared once it moves again.
class DaemonObserver final : public PullObserver {
 public:
  DaemonObserver(std::mutex& mu, uint64_t& done, uint64_t& total, std::string& waiting,
                 const Clock& clock)
      : mu_(mu), done_(done), total_(total), waiting_(waiting), clock_(clock) {}
  void OnWaitingForLock(const std::string& message) override {
    std::lock_guard<std::mutex> l(mu_);
    waiting_ = message;
  }
  void OnRetry(const std::string& message, milliseconds delay) override {
    std::lock_guard<std::mutex> l(mu_);
    // The message says how long, from when it was said; status is read later.
    waiting_ = message + "; retrying at " + FormatTimeMs(clock_.WallMs() + delay.count());
  }
  void OnResolved(const std::string&, const std::string&, const std::string&, uint64_t,
                  uint64_t bytes_total, uint64_t) override {
    std::lock_guard<std::mutex> l(mu_);
    total_ = bytes_total;
    waiting_.clear();
  }
  void OnProgress(uint64_t done, uint64_t total, uint64_t, uint64_t) override {
    std::lock_guard<std::mutex> l(mu_);
    if (done != done_) waiting_.clear();
    done_ = done;
    total_ = total;
  }

 private:
  std::mutex& mu_;
  uint64_t& done_;
  uint64_t& total_;
  std::string& waiting_;
  const Clock& clock_;
};

}  // namespace

uint64_t Daemon::ScheduleRounds() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->rounds;
}

Status Daemon::Run() {
  auto& log = options_.log;
  Impl& im = *impl_;
  auto jitter = [&](milliseconds d) {
    return milliseconds(
        static_cast<int64_t>(static_cast<double>(d.count()) * im.env.random->Uniform(0.9, 1.1)));
  };
  auto reload = [&](bool first) -> Status {
    auto list = ListTracked(impl_->env, options_.root);
    if (!list.ok()) {
      if (first) return list.status();
      log(4, "cannot re-read the watch list (keeping the old one): " + list.status().message());
      return Status::Ok();
    }
    std::lock_guard<std::mutex> l(im.mu);
    std::map<std::string, Entry> next;
    for (auto& t : *list) {
      Entry e;
      if (auto it = im.entries.find(t.repo); it != im.entries.end()) {
        e = it->second;
        if (!(e.t == t)) e.next = im.env.clock->Now();
      } else {
        e.next = im.env.clock->Now();
      }
      e.t = t;
      next[t.repo] = std::move(e);
    }
    im.entries = std::move(next);
    log(6, "watching " + std::to_string(im.entries.size()) + " repo(s) in " + options_.root);
    return Status::Ok();
  };
  MS_RETURN_IF_ERROR(reload(true));
  log(6, "daemon started (pid " + std::to_string(::getpid()) + ", max rate " +
             (max_rate_.load() ? FormatBytes(max_rate_.load()) + "/s" : std::string("unlimited")) + ")");

  uint64_t served = 0;
  while (!stop_.load()) {
    if (reload_.exchange(false)) {
      log(6, "SIGHUP: re-reading the watch list");
      (void)reload(false);
    }
    uint64_t want = sync_now_.load();
    bool full_pass = want > served;
    std::vector<std::string> due;
    {
      std::lock_guard<std::mutex> l(im.mu);
      auto now = im.env.clock->Now();
      for (auto& [name, e] : im.entries)
        if (full_pass || e.next <= now) due.push_back(name);
    }
    json pass = json::array();
    for (const auto& name : due) {
      if (stop_.load()) break;
      Entry e;
      {
        std::lock_guard<std::mutex> l(im.mu);
        auto it = im.entries.find(name);
        if (it == im.entries.end()) continue;
        e = it->second;
        im.current_repo = name;
        im.bytes_done = im.bytes_total = 0;
        im.waiting.clear();
      }
      PullOptions po = TrackedPullOptions(options_.root, e.t);
      po.cancel = &stop_;
      po.only_if_tracked = true;
      po.max_rate = &max_rate_;
      po.connections = options_.max_downloads;
      DaemonObserver obs(im.mu, im.bytes_done, im.bytes_total, im.waiting, *im.env.clock);
      bool converted = false;
      auto r = PullTracked(im.env, po, e.t, &obs, &converted);
      if (!r.ok() && r.status().IsCancelled() && stop_.load()) break;
      if (!r.ok() && r.status().IsNotFound() && !StillTracked(options_.root, name)) {
        // Removed or untracked while the daemon ran: dropped, never pulled back.
        log(6, name + ": no longer tracked (removed or untracked); dropped from the watch list");
        std::lock_guard<std::mutex> l(im.mu);
        im.entries.erase(name);
        im.current_repo.clear();
        continue;
      }
      milliseconds every(e.t.every_ms);
      json pr = {{"repo", name}};
      if (r.ok()) {
        if (e.failures)
          log(6, name + ": sync works again after " + std::to_string(e.failures) + " failed tr" +
                     (e.failures == 1 ? "y" : "ies"));
        if (!r->up_to_date)
          log(6, name + "@" + po.revision + ": updated to " + r->commit.substr(0, 12) + " (fetched " +
                     FormatBytes(r->bytes_fetched) + " in " + std::to_string(r->seconds).substr(0, 4) + "s)" +
                     (converted ? "; converted into an MLX model again" : ""));
        e.failures = 0;
        e.last_error.clear();
        e.commit = r->commit;
        e.last_ok_ms = im.env.clock->WallMs();
        pr.update({{"ok", true}, {"commit", r->commit}, {"up_to_date", r->up_to_date},
                   {"bytes_fetched", r->bytes_fetched}, {"converted", converted}});
        e.next = every.count() ? im.env.clock->Now() + jitter(every) : TimePoint::max();
      } else {
        std::string msg = RedactForLog(r.status().message());
        int code = static_cast<int>(r.status().code());
        if (e.failures == 0 || code != e.last_code) {
          // Logged once per change of state, not per try.
          log(e.failures == 0 ? 4 : 6,
              name + ": sync failed (" + std::string(StatusCodeName(r.status().code())) + "): " +
                  msg + "; retrying with backoff, next message when this changes");
        }
        e.failures++;
        e.last_error = msg;
        e.last_code = code;
        milliseconds base = every.count() ? every : milliseconds(60000);
        milliseconds cap = std::max(options_.max_backoff, base);
        milliseconds delay = base * (1LL << std::min(e.failures - 1, 20));
        e.next = im.env.clock->Now() + jitter(std::min(delay, cap));
        pr.update({{"ok", false}, {"code", StatusCodeName(r.status().code())}, {"message", msg}});
      }
      e.last_try_ms = im.env.clock->WallMs();
      pass.push_back(std::move(pr));
      std::lock_guard<std::mutex> l(im.mu);
      im.current_repo.clear();
      if (auto it = im.entries.find(name); it != im.entries.end()) {
        e.t = it->second.t;  // a reload during the pull keeps its tracking
        it->second = std::move(e);
      }
    }
    std::unique_lock<std::mutex> l(im.mu);
    ++im.rounds;
    if (!due.empty()) im.last_pass = std::move(pass);
    if (full_pass && !stop_.load()) {
      served = want;
      im.passes_served = want;
      im.cv.notify_all();
    }
    // Sleeps until the next repo is due (on the Env's clock), at most 200 ms of real time at
    // a stretch so a fake clock moved by a test is noticed.
    auto now = im.env.clock->Now();
    auto wake = now + milliseconds(200);
    for (const auto& [name, e] : im.entries) wake = std::min(wake, e.next);
    im.cv.wait_for(l, std::max<Clock::Duration>(Clock::Duration(0), wake - now),
                   [&] { return stop_.load() || sync_now_.load() > served; });
  }
  {
    std::lock_guard<std::mutex> l(im.mu);
    im.cv.notify_all();
  }
  log(6, "daemon stopping (signal); synced bytes are kept, the next start resumes");
  return Status::Ok();
}

}  // namespace modelsync::engine
