// `modelsync diff REPO`: what updating the repo would change, without changing anything.
//
// --json prints one object: repo, from_commit, from_ref (the active revision; "" if none),
// to_commit, to_ref, remote (false: compared with the log, no request), identical, the counts
// added/modified/removed/renamed/unchanged, fetch_bytes, free_bytes, to_bytes, and changes[]:
// {kind, path, [old_path], [content_id, size], [old_content_id, old_size], [needs_fetch]},
// sorted by path; unchanged files are listed too (kind "unchanged").
// Exit status: the common table (cli/common.h); 8 when the repo or --local revision is unknown.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/diff.h"
#include "engine/report_json.h"

namespace modelsync::cli {
namespace {

struct DiffCliOptions {
  engine::DiffOptions d;
  bool json = false;
};

std::string Short(const std::string& commit) {
  return commit.empty() ? "(nothing active)" : commit.substr(0, 12);
}

int PrintJson(const engine::RevisionDiff& d) {
  std::printf("%s\n", engine::DiffJson(d).dump().c_str());
  return 0;
}

int PrintText(const engine::RevisionDiff& d) {
  std::printf("%s: %s%s -> %s%s%s\n", d.repo.c_str(), Short(d.from_commit).c_str(),
              d.from_ref.empty() ? "" : (" (" + d.from_ref + ")").c_str(),
              Short(d.to_commit).c_str(), d.to_ref.empty() ? "" : (" (" + d.to_ref + ")").c_str(),
              d.remote ? "" : " [from the log, no request]");
  if (d.Identical() && d.from_commit == d.to_commit) {
    std::printf("  up to date (%llu files)\n", static_cast<unsigned long long>(d.unchanged));
  }
  for (const auto& c : d.changes) {
    switch (c.kind) {
      case engine::ChangeKind::kAdded:
        std::printf("  A %s (%s)\n", c.path.c_str(), FormatBytes(c.size).c_str());
        break;
      case engine::ChangeKind::kModified:
        std::printf("  M %s (%s -> %s)\n", c.path.c_str(), FormatBytes(c.old_size).c_str(),
                    FormatBytes(c.size).c_str());
        break;
      case engine::ChangeKind::kRemoved:
        std::printf("  D %s (%s)\n", c.path.c_str(), FormatBytes(c.old_size).c_str());
        break;
      case engine::ChangeKind::kRenamed:
        std::printf("  R %s -> %s\n", c.old_path.c_str(), c.path.c_str());
        break;
      case engine::ChangeKind::kUnchanged:
        break;
    }
  }
  std::printf("  %llu added, %llu modified, %llu removed, %llu renamed, %llu unchanged\n",
              static_cast<unsigned long long>(d.added), static_cast<unsigned long long>(d.modified),
              static_cast<unsigned long long>(d.removed),
              static_cast<unsigned long long>(d.renamed),
              static_cast<unsigned long long>(d.unchanged));
  std::printf("  to fetch: %s; freed by gc afterwards: %s\n", FormatBytes(d.fetch_bytes).c_str(),
              FormatBytes(d.free_bytes).c_str());
  return 0;
}

int RunDiffCommand(DiffCliOptions o, bool revision_given) {
  if (Status s = ReadRepoArgument(o.d.root, &o.d.repo, &o.d.revision, revision_given, o.json);
      !s.ok())
    return ReportError(s, o.json);
  auto r = engine::RunDiff(CliEnv(), o.d);
  if (!r.ok()) return ReportError(r.status(), o.json);
  return o.json ? PrintJson(*r) : PrintText(*r);
}

}  // namespace

void RegisterDiff(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<DiffCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "diff",
      "Show what updating a model would change: files added, modified, removed,\n"
      "renamed, and the bytes to download. Changes nothing on disk.");
  cmd->add_option("repo", opts->d.repo,
                  "The repo (org/name, org/name@rev, a hub URL, a model id or a catalog name)")
      ->required();
  cmd->add_option("--revision", opts->d.revision,
                  "Branch, tag or 40-hex commit to compare with (default: main; with --local: "
                  "the last resolved revision)");
  cmd->add_flag("--local", opts->d.local,
                "Compare with a revision already in the log; no network (implied by "
                "HF_HUB_OFFLINE=1)");
  AddRootOption(cmd, &opts->d.root);
  AddEndpointOption(cmd, &opts->d.endpoint);
  cmd->add_flag("--json", opts->json, "One JSON object");
  cmd->callback([opts, cmd, &ctx] {
    ctx.exit_code = RunDiffCommand(*opts, cmd->count("--revision") > 0);
  });
}

}  // namespace modelsync::cli
