// `modelsync log`: the event log, in order, for people or (--json) for machines.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/event_format.h"
#include "engine/journal.h"

namespace modelsync::cli {
namespace {

struct LogOptions {
  std::string root;
  bool json = false;
  uint64_t from = 1;
};

int RunLog(const LogOptions& o) {
  Status s = engine::Journal::ScanLog(o.root, o.from, [&](uint64_t seq, const v1::Event& e) {
    std::string line = o.json
                           ? EventToJson(seq, e).dump(
                                 -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                           : FormatEventText(seq, e);
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size())
      return Status::IOError("writing to standard output failed");
    return Status::Ok();
  });
  if (std::fflush(stdout) != 0 && s.ok()) s = Status::IOError("writing to standard output failed");
  if (!s.ok()) {
    if (s.IsCorruption())
      s = s.With("the event log under " + o.root +
                 " is damaged (keep a copy of .modelsync/log for a bug report)");
    return ReportError(s);
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
  cmd->footer("Exit status: 0 ok, 3 the log is damaged, 5 written by a newer modelsync, 1 other.");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunLog(*opts); });
}

}  // namespace modelsync::cli
