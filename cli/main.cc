// The modelsync program: parses the command line and hands each command to the engine.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <algorithm>
#include <vector>

#include "cli/commands.h"
#include "cli/usage.h"
#include "engine/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "modelsync keeps model repositories from a Hugging Face-compatible hub complete, verified\n"
      "and current on this machine, laid out as MLX apps load them."};
  app.name("modelsync");
  app.get_formatter()->label("SUBCOMMAND", "COMMAND");
  app.set_version_flag("--version,-V",
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
  modelsync::cli::RegisterConvert(app, ctx);
  modelsync::cli::RegisterExport(app, ctx);
  modelsync::cli::RegisterImport(app, ctx);
  modelsync::cli::RegisterCompletion(app, ctx);
  modelsync::cli::RegisterHelp(app, &ctx.exit_code);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) sub->group("Commands");
  app.footer("Run 'modelsync help COMMAND' (or 'modelsync COMMAND --help') for a command's options.");
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  args = modelsync::cli::HoistGlobalOptions(args, app);
  const bool json = std::find(args.begin(), args.end(), "--json") != args.end();
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants it last first
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0; every other one is a wrong argument.
    if (e.get_exit_code() == 0) return app.exit(e);
    return modelsync::cli::ReportParseError(app, e, args, json);
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
