// The modelsync program: parses the command line and hands each command to the engine.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "engine/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "modelsync keeps model repositories from a Hugging Face-compatible hub complete, verified\n"
      "and current on this machine, laid out as MLX apps load them."};
  app.set_version_flag("--version",
                       std::string("modelsync ") + std::string(modelsync::engine::Version()));
  app.require_subcommand(0, 1);
  modelsync::cli::CliContext ctx;
  modelsync::cli::RegisterPull(app, ctx);
  modelsync::cli::RegisterStatus(app, ctx);
  modelsync::cli::RegisterLog(app, ctx);
  modelsync::cli::RegisterDiff(app, ctx);
  modelsync::cli::RegisterRebuild(app, ctx);
  modelsync::cli::RegisterVerify(app, ctx);
  modelsync::cli::RegisterGc(app, ctx);
  modelsync::cli::RegisterRemove(app, ctx);
  modelsync::cli::RegisterTrack(app, ctx);
  modelsync::cli::RegisterUntrack(app, ctx);
  modelsync::cli::RegisterList(app, ctx);
  modelsync::cli::RegisterLs(app, ctx);
  modelsync::cli::RegisterSync(app, ctx);
  modelsync::cli::RegisterDaemon(app, ctx);
  modelsync::cli::RegisterCatalog(app, ctx);
  modelsync::cli::RegisterInspect(app, ctx);
  modelsync::cli::RegisterAddLocal(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  // Output that could not be written (a full disk behind `> file`, a closed pipe) is a
  // failure, never a silent exit 0.
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "modelsync: writing to standard output failed (%s)\n",
                 std::strerror(errno));
    if (ctx.exit_code == 0) return 1;
  }
  return ctx.exit_code;
}
