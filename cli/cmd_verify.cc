// `modelsync verify`: re-hash every model file against its manifest.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "engine/recovery.h"

namespace modelsync::cli {
namespace {

struct VerifyCliOptions {
  std::string root, repo, endpoint;
  bool repair = false;
  OutputFlags out;
};

int RunVerify(VerifyCliOptions o) {
  if (!o.repo.empty())
    if (Status s = ReadRepoArgument(o.root, &o.repo, nullptr, false, o.out.json || o.out.quiet);
        !s.ok())
      return ReportError(s, o.out.json);
  engine::VerifyOptions vo;
  vo.root = o.root;
  vo.repo = o.repo;
  vo.repair = o.repair;
  vo.endpoint = o.endpoint;
  ProgressBar bar("verify", !o.out.json && !o.out.quiet && ProgressWanted());
  if (bar.enabled())
    vo.on_progress = [&](const engine::VerifyProgress& p) {
      bar.Update(p.bytes_done, p.bytes_total, p.files_done, p.files_total);
    };
  Interrupts interrupts;
  vo.cancel = interrupts.flag();
  auto r = engine::Verify(CliEnv(), vo);
  bar.Finish();
  if (!r.ok() && r.status().IsCancelled() && interrupts.signal() != 0) {
    if (o.out.json)
      std::printf("%s\n", nlohmann::json({{"event", "interrupted"},
                                          {"signal", interrupts.SignalName()},
                                          {"message", r.status().message()},
                                          {"exit", interrupts.ExitCode()}})
                              .dump()
                              .c_str());
    else
      std::fprintf(stderr, "interrupted (%s): %s; run the same command to verify again\n",
                   interrupts.SignalName().c_str(), r.status().message().c_str());
    return interrupts.ExitCode();
  }
  if (!r.ok()) return ReportError(r.status(), o.out.json);
  for (const auto& i : r->issues) {
    if (o.out.json) {
      std::printf("%s\n", nlohmann::json({{"issue", engine::VerifyIssueName(i.kind)},
                                          {"repo", i.repo},
                                          {"path", i.path},
                                          {"content_id", i.content_id},
                                          {"detail", i.detail}})
                              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                              .c_str());
    } else {
      std::printf("%-12s %s/%s: %s\n", engine::VerifyIssueName(i.kind), i.repo.c_str(),
                  i.path.c_str(), i.detail.c_str());
    }
  }
  for (const auto& i : r->interrupted) {
    if (o.out.json) {
      std::printf("%s\n", nlohmann::json({{"interrupted_update", i.repo},
                                          {"dir_commit", i.dir_commit},
                                          {"active_commit", i.active_commit}})
                              .dump()
                              .c_str());
    } else if (!o.out.quiet) {
      std::printf(
          "%-12s %s: the directory holds revision %s (checked against it): an update was "
          "cut off after the directory swap; `modelsync pull %s` records it, `modelsync "
          "rebuild` returns to %s\n",
          "interrupted", i.repo.c_str(), i.dir_commit.substr(0, 12).c_str(), i.repo.c_str(),
          i.active_commit.substr(0, 12).c_str());
    }
  }
  bool damaged = r->damaged();
  if (o.out.json) {
    std::printf("%s\n", nlohmann::json({{"repos", r->repos},
                                        {"files", r->files},
                                        {"bytes_hashed", r->bytes_hashed},
                                        {"issues", r->issues.size()},
                                        {"interrupted", r->interrupted.size()},
                                        {"damaged", damaged},
                                        {"repaired", r->repaired},
                                        {"bytes_fetched", r->bytes_fetched},
                                        {"repair_errors", r->repair_errors}})
                            .dump()
                            .c_str());
  } else if (!o.out.quiet) {
    std::printf("%llu file(s) in %llu model(s), %s hashed: %s\n",
                static_cast<unsigned long long>(r->files),
                static_cast<unsigned long long>(r->repos), FormatBytes(r->bytes_hashed).c_str(),
                damaged ? "DAMAGED" : "ok");
    if (o.repair && damaged) {
      if (r->repaired)
        std::printf("repaired: re-downloaded %s\n", FormatBytes(r->bytes_fetched).c_str());
      for (const auto& e : r->repair_errors) std::printf("repair failed: %s\n", e.c_str());
    } else if (damaged) {
      std::printf("run `modelsync verify --repair` to download only the damaged content\n");
    }
  }
  if (!damaged) return 0;
  return o.repair && r->repaired ? 0 : 3;
}

}  // namespace

void RegisterVerify(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<VerifyCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Re-hash every file of each active model against its manifest (sha256 for LFS files,\n"
      "git blob sha1 otherwise); report missing, damaged, extra and unverifiable files.");
  cmd->add_option("repo", opts->repo, "Only this repo (org/name, a URL, a model id or a catalog name)");
  AddRootOption(cmd, &opts->root);
  AddEndpointOption(cmd, &opts->endpoint);
  cmd->add_flag("--repair", opts->repair,
                "Remove the damaged content and download only that (needs the hub)");
  AddOutputFlags(cmd, &opts->out);
  cmd->footer(
      "Exit status: 0 every file intact (or repaired), 3 a file is missing or damaged (or the\n"
      "log is), 8 unknown repo, 1 other. Extra files are reported but are not damage.");
  cmd->callback([opts, &ctx] { ctx.exit_code = RunVerify(*opts); });
}

}  // namespace modelsync::cli
