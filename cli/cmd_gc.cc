// `modelsync gc`: remove content nothing references; compact the log's start-up cost.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/recovery.h"

namespace modelsync::cli {
namespace {

struct GcCliOptions {
  std::string root;
  bool dry_run = false;
  bool json = false;
};

int RunGc(const GcCliOptions& o) {
  engine::GcOptions go;
  go.root = o.root;
  go.dry_run = o.dry_run;
  auto r = engine::Gc(CliEnv(), go);
  if (!r.ok()) return ReportError(r.status(), o.json);
  const char* verb = o.dry_run ? "would remove" : "removed";
  if (o.json) {
    for (const auto& [id, size] : r->blobs)
      std::printf("%s\n", nlohmann::json({{"blob", id}, {"bytes", size}}).dump().c_str());
    for (const auto& [id, size] : r->partials)
      std::printf("%s\n", nlohmann::json({{"partial", id}, {"bytes", size}}).dump().c_str());
    for (const auto& [name, size] : r->temp_files)
      std::printf("%s\n", nlohmann::json({{"temp_file", name}, {"bytes", size}}).dump().c_str());
    std::printf("%s\n", nlohmann::json({{"dry_run", o.dry_run},
                                        {"blobs_removed", r->blobs.size()},
                                        {"partials_removed", r->partials.size()},
                                        {"temp_files_removed", r->temp_files.size()},
                                        {"blobs_kept", r->blobs_kept},
                                        {"bytes_freed", r->bytes_freed},
                                        {"snapshot_written", r->snapshot_written},
                                        {"snapshot_seq", r->snapshot_seq},
                                        {"events_compacted", r->events_compacted},
                                        {"compacted_event_bytes", r->compacted_event_bytes},
                                        {"live_range_events", r->live_range_events},
                                        {"log_bytes_before", r->log_bytes_before},
                                        {"log_bytes_after", r->log_bytes_after},
                                        {"log_rewritten", r->log_rewritten},
                                        {"rewrite_error", r->rewrite_error}})
                            .dump()
                            .c_str());
    return 0;
  }
  for (const auto& [id, size] : r->blobs)
    std::printf("%s blob %s (%s)\n", verb, id.c_str(), FormatBytes(size).c_str());
  for (const auto& [id, size] : r->partials)
    std::printf("%s partial %llu (%s)\n", verb, static_cast<unsigned long long>(id),
                FormatBytes(size).c_str());
  for (const auto& [name, size] : r->temp_files)
    std::printf("%s temporary file blobs/%s left by an interrupted run (%s)\n", verb,
                name.c_str(), FormatBytes(size).c_str());
  std::printf("%s %zu blob(s), %zu partial file(s) and %zu temporary file(s): %s %s; %llu blob(s) in use kept\n", verb,
              r->blobs.size(), r->partials.size(), r->temp_files.size(), FormatBytes(r->bytes_freed).c_str(),
              o.dry_run ? "would be freed" : "freed",
              static_cast<unsigned long long>(r->blobs_kept));
  if (r->snapshot_written)
    std::printf("log snapshot written at event #%llu\n",
                static_cast<unsigned long long>(r->snapshot_seq));
  auto ull = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  if (o.dry_run) {
    std::printf(
        "would drop %llu event(s) from the log (ranges of finished transfers, files of replaced revisions) (~%s of records; "
        "data.mdb is %s now)\n",
        ull(r->events_compacted), FormatBytes(r->compacted_event_bytes).c_str(),
        FormatBytes(r->log_bytes_before).c_str());
  } else if (r->events_compacted > 0) {
    std::printf(
        "dropped %llu event(s) from the log (ranges of finished transfers, files of replaced revisions); data.mdb %s -> %s%s\n",
        ull(r->events_compacted), FormatBytes(r->log_bytes_before).c_str(),
        FormatBytes(r->log_bytes_after).c_str(), r->log_rewritten ? " (rewritten compactly)" : "");
  }
  if (r->live_range_events > 0)
    std::printf("kept %llu range event(s) of unfinished transfers (a later pull resumes them)\n",
                ull(r->live_range_events));
  if (!r->rewrite_error.empty())
    std::fprintf(stderr,
                 "warning: the log file was not rewritten (%s); the dropped events' pages are "
                 "reused by later appends\n",
                 r->rewrite_error.c_str());
  return 0;
}

}  // namespace

void RegisterGc(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<GcCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gc",
      "Remove blobs no active model uses and partial downloads no transfer owns, then write\n"
      "a snapshot of the log's state, drop the range events of finished transfers and the\n"
      "file events of replaced revisions, and rewrite the log file compactly, so it stays\n"
      "small and start-up stays fast. Takes the root's\n"
      "lock (waits for a running pull).");
  AddRootOption(cmd, &opts->root);
  cmd->add_flag("--dry-run,-n", opts->dry_run, "Only show what would go");
  cmd->add_flag("--json", opts->json, "One JSON object per removed item, then a summary");
  cmd->footer("Exit status: 0 ok, 3 the log is damaged, 1 other.");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunGc(*opts); });
}

}  // namespace modelsync::cli
