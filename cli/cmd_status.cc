// `modelsync status`: per repo, what is active and how complete it is, from the log alone.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/daemon.h"
#include "engine/report_json.h"
#include "engine/status.h"

namespace modelsync::cli {
namespace {

struct StatusOptions {
  std::string root;
  std::string repo;
  bool json = false;
};

// When a daemon runs on the root: its live state (the "daemon" member under --json), then
// the log. Null when no daemon answers.
nlohmann::json DaemonJson(const StatusOptions& o) {
  auto reply = engine::DaemonRequest(o.root, "status");
  if (!reply.ok()) return nullptr;
  auto j = nlohmann::json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return nullptr;
  return j;
}

void PrintDaemon(const nlohmann::json& j) {
  if (j.is_null()) return;
  std::printf("daemon pid %d: %s", j.value("pid", 0), j.value("state", "?").c_str());
  if (j.contains("current"))
    std::printf(" %s, %s of %s", j["current"].value("repo", "").c_str(),
                FormatBytes(j["current"].value("bytes_done", uint64_t{0})).c_str(),
                FormatBytes(j["current"].value("bytes_total", uint64_t{0})).c_str());
  std::printf("\n");
  if (j.contains("current") && j["current"].contains("waiting"))
    std::printf("  waiting: %s\n", j["current"].value("waiting", "").c_str());
  for (const auto& r : j["repos"]) {
    std::string next = "no check scheduled (every 0: only at start and on sync --now)";
    if (r.contains("next_in_ms") && r["next_in_ms"].is_number())
      next = "next check in " +
             FormatDuration(std::chrono::milliseconds(r["next_in_ms"].get<int64_t>()));
    std::printf("  %s: %s, %s%s%s\n", r.value("repo", "").c_str(), r.value("state", "").c_str(),
                next.c_str(), r.contains("last_error") ? ", last error: " : "",
                r.value("last_error", "").c_str());
  }
}

int RunStatus(StatusOptions o) {
  if (Status rs = CheckReadRoot(o.root); !rs.ok()) return ReportError(rs, o.json);
  if (!o.repo.empty())
    if (Status s = ReadRepoArgument(o.root, &o.repo, nullptr, false, o.json); !s.ok())
      return ReportError(s, o.json);
  nlohmann::json daemon = DaemonJson(o);
  auto r = engine::ReadStatus(CliEnv(), o.root, o.repo);
  if (!r.ok()) return ReportError(r.status(), o.json);
  const bool offline = CliEnv().config.offline;
  if (o.json) {
    // One document, whether or not a daemon runs (docs/json/status.schema.json).
    EmitJson(engine::StatusJson(o.root, *r, daemon, offline));
    return r->damaged() ? 3 : 0;
  }
  PrintDaemon(daemon);
  if (r->repos.empty() && r->stray_markers.empty()) {
    std::printf("no models in %s yet (modelsync pull ORG/NAME)\n", o.root.c_str());
    return 0;
  }
  for (const auto& s : r->repos) {
    std::string state = s.state;
    if (s.never_completed) state += " (never completed: `modelsync remove " + s.repo + "` forgets it)";
    std::printf("%s  %s  %s\n", s.repo.c_str(), state.c_str(),
                s.active_commit.empty() ? "(nothing active)" : s.active_commit.substr(0, 12).c_str());
    std::printf("  files %llu/%llu, %s of %s", static_cast<unsigned long long>(s.files_done),
                static_cast<unsigned long long>(s.files_total), FormatBytes(s.bytes_done).c_str(),
                FormatBytes(s.bytes_total).c_str());
    if (!s.model_id.empty()) {
      std::string m = s.marker_state == "written"    ? "written"
                      : s.marker_state == "missing"  ? "MISSING (the log wrote it; run `modelsync rebuild`)"
                      : s.marker_state == "unexpected" ? "present but never written by the log (run `modelsync rebuild`)"
                      : s.marker_state == "unrecorded" ? "written (not yet recorded: the next pull records it)"
                                                     : "absent";
      std::printf(", marker %s %s", s.model_id.c_str(), m.c_str());
    }
    std::printf("\n");
    if (!s.no_marker_reason.empty()) std::printf("  no marker: %s\n", s.no_marker_reason.c_str());
    if (!s.converter.empty())
      std::printf("  converted from %s (%s)\n", s.converted_from.c_str(), s.converter.c_str());
    for (const auto& other : s.shared_with)
      std::printf("  DAMAGE: model id %s is also claimed by %s (a log of an older modelsync): "
                  "pull one of them again with --id NAME\n", s.model_id.c_str(), other.c_str());
    if (s.update_available)
      std::printf("  update available: %s, %llu files, %s to fetch\n",
                  s.target_commit.substr(0, 12).c_str(),
                  static_cast<unsigned long long>(s.update_files),
                  FormatBytes(s.update_bytes).c_str());
    if (offline)
      std::printf("  not checked against the hub (offline)%s%s\n",
                  s.last_checked_ms ? "; last checked " : "",
                  s.last_checked_ms ? FormatTimeMs(s.last_checked_ms).c_str() : "");
    if (!s.last_error.empty()) std::printf("  last error (%s): %s\n", FormatTimeMs(s.last_error_ms).c_str(), s.last_error.c_str());
  }
  for (const auto& m : r->stray_markers)
    std::printf("stray marker %s/%s: no model in the log accounts for it (run `modelsync "
                "rebuild`)\n", o.root.c_str(), m.c_str());
  return r->damaged() ? 3 : 0;
}

}  // namespace

void RegisterStatus(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand(
      "status", "Show each model's active revision and completeness, from the log alone\n"
                "(no network, no lock: works while a pull or the daemon runs).");
  cmd->add_option("repo", opts->repo, "Only this repo (org/name, a URL, a model id or a catalog name)");
  AddRootOption(cmd, &opts->root);
  cmd->add_flag("--json", opts->json,
                "One JSON document: the root, the daemon's live state (null when none runs), "
                "every repo, stray markers (docs/json/status.schema.json)");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunStatus(*opts); });
}

}  // namespace modelsync::cli
