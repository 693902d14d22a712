// `modelsync log`: the event log, in order, for people or (--json) for machines.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "base/units.h"

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/log_read.h"

namespace modelsync::cli {
namespace {

struct LogOptions {
  std::string root;
  bool json = false;
  uint64_t from = 1;
  std::string repo;   // --repo: only events about this repo
  std::string since;  // --since: ISO time or a duration ago
};

// "2026-11-25T20:11:03Z" (or without Z, or "2026-11-25", UTC) or a duration meaning that
// long ago ("1h", "30m", "2d"). Returns Unix ms.
Result<int64_t> ParseSince(const std::string& text, int64_t now_ms) {
  std::tm tm{};
  for (const char* fmt : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ",
                          "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    tm = std::tm{};
    const char* end = strptime(text.c_str(), fmt, &tm);
    if (end && *end == 0) return static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  std::string d = text;
  int64_t mult = 1;
  if (!d.empty() && d.back() == 'd') {  // days, which ParseDuration may not know
    d.pop_back();
    d += "h";
    mult = 24;
  }
  auto dur = ParseDuration(d);
  if (!dur.ok())
    return Status::InvalidArgument("--since " + text +
                                   ": give an ISO time (2026-11-25T20:00:00Z) or a duration "
                                   "ago (90s, 30m, 1h, 2d)");
  return now_ms - static_cast<int64_t>(dur->count()) * mult;
}

int RunLog(const LogOptions& o) {
  int64_t since_ms = 0;
  if (!o.since.empty()) {
    auto t = ParseSince(o.since, static_cast<int64_t>(std::time(nullptr)) * 1000);
    if (!t.ok()) return ReportError(t.status(), o.json);
    since_ms = *t;
  }
  auto write = [](std::string line) {
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size())
      return Status::IOError("writing to standard output failed");
    return Status::Ok();
  };
  // Compacted runs since the last printed event, shown before the next one (never skipped
  // silently; with filters they are aggregated: compaction does not say whose they were).
  uint64_t gap_first = 0, gap_last = 0, gap_events = 0;
  auto flush_gap = [&]() -> Status {
    if (gap_events == 0) return Status::Ok();
    std::string line =
        o.json ? nlohmann::json({{"compacted",
                                  {{"first", gap_first}, {"last", gap_last}, {"events", gap_events}}}})
                     .dump()
               : (gap_first == gap_last ? "event #" + std::to_string(gap_first)
                                        : "events #" + std::to_string(gap_first) + "..#" +
                                              std::to_string(gap_last)) +
                     ": " + std::to_string(gap_events) +
                     " event(s) compacted away by gc (ranges of finished transfers, files of replaced revisions)";
    gap_events = 0;
    return write(std::move(line));
  };
  auto on_gap = [&](uint64_t first, uint64_t last) {
    if (gap_events == 0) gap_first = first;
    gap_last = last;
    gap_events += last - first + 1;
    return Status::Ok();
  };
  engine::LogQuery query;
  query.from = o.from;
  query.repo = o.repo;
  query.since_ms = since_ms;
  query.json = o.json;
  Status s = engine::ReadLog(
      o.root, query,
      [&](uint64_t, const std::string& line) {
        MS_RETURN_IF_ERROR(flush_gap());
        return write(line);
      },
      on_gap);
  if (s.ok()) s = flush_gap();
  if (std::fflush(stdout) != 0 && s.ok()) s = Status::IOError("writing to standard output failed");
  if (!s.ok()) {
    if (s.IsCorruption())
      s = s.With("the event log under " + o.root +
                 " is damaged (keep a copy of .modelsync/log for a bug report)");
    return ReportError(s, o.json);
  }
  return 0;
}

}  // namespace

void RegisterLog(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<LogOptions>();
  CLI::App* cmd = app.add_subcommand(
      "log",
      "Print the event log in order, one event per line: what modelsync did and when.\n"
      "Reads the log only (no network, no lock): works while a pull or the daemon runs.");
  AddRootOption(cmd, &opts->root);
  cmd->add_flag("--json", opts->json,
                "One JSON object per line: seq, time_ms, time, kind, event (all fields)");
  cmd->add_option("--from", opts->from, "Start at this sequence number")
      ->type_name("SEQ")
      ->default_val(1);
  cmd->add_option("--repo", opts->repo,
                  "Only events about this repo (transfer events through their TransferStarted)")
      ->type_name("ORG/NAME");
  cmd->add_option("--since", opts->since,
                  "Only events at or after this time: ISO 8601 UTC (2026-11-25T20:00:00Z) or a "
                  "duration ago (30m, 1h, 2d)")
      ->type_name("T");
  cmd->footer("Exit status: 0 ok, 3 the log is damaged, 5 written by a newer modelsync, 1 other.");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunLog(*opts); });
}

}  // namespace modelsync::cli
