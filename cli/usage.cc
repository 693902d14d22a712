#include "cli/usage.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"

namespace modelsync::cli {
namespace {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<CLI::App*> Commands(CLI::App& app) {
  return app.get_subcommands([](CLI::App*) { return true; });
}

std::vector<std::string> CommandNames(CLI::App& app) {
  std::vector<std::string> names;
  for (CLI::App* sub : Commands(app)) {
    names.push_back(sub->get_name());
    for (const auto& a : sub->get_aliases()) names.push_back(a);
  }
  return names;
}

std::vector<std::string> OptionNames(CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* o : cmd.get_options()) {
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
  }
  return names;
}

// "Usage: modelsync pull [OPTIONS] repo" from the command's help text.
std::string UsageLine(const CLI::App& cmd) {
  std::string help = cmd.get_parent() == nullptr ? cmd.help() : cmd.help("modelsync");
  size_t at = help.find("Usage: ");
  if (at == std::string::npos) return "";
  size_t end = help.find('\n', at);
  std::string line = help.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7);
  return "usage: " + line;
}

}  // namespace

std::string NearestName(const std::string& word, const std::vector<std::string>& candidates) {
  if (word.empty()) return "";
  std::string best;
  size_t best_d = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (!best.empty()) return best;
  std::string prefixed;
  size_t strip = word.find_first_not_of('-');
  if (word.size() - (strip == std::string::npos ? word.size() : strip) < 3) return "";
  for (const auto& c : candidates) {
    if (c.rfind(word, 0) != 0) continue;
    if (!prefixed.empty()) return "";  // not unique
    prefixed = c;
  }
  return prefixed;
}

namespace {

// Whether args[0, k) are options of `cmd` with their values (--root DIR is one of every
// command's), so that they may move after args[k], the command's name.
bool OptionsOf(const std::vector<std::string>& args, size_t k, const CLI::App& cmd) {
  size_t j = 0;
  while (j < k) {
    const std::string& a = args[j];
    if (a.size() < 2 || a[0] != '-' || a == "--") return false;
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    if (name == "-h" || name == "--help" || name == "-V" || name == "--version") return false;
    bool takes_value = name == "--root";
    if (!takes_value) {
      const CLI::Option* o = cmd.get_option_no_throw(name);
      if (o == nullptr) return false;
      takes_value = o->get_expected_min() > 0;  // a flag expects none
    }
    j += takes_value && eq == std::string::npos ? 2 : 1;
  }
  return j == k;
}

}  // namespace

std::vector<std::string> HoistGlobalOptions(const std::vector<std::string>& args,
                                            const CLI::App& app) {
  if (args.empty() || args[0].empty() || args[0][0] != '-') return args;  // the command first
  const auto commands = app.get_subcommands([](const CLI::App*) { return true; });
  // The command is the first word naming one before which every argument is one of its
  // options (a value that happens to be a command's name is skipped over as a value).
  for (size_t k = 1; k < args.size(); ++k) {
    const CLI::App* cmd = nullptr;
    for (const CLI::App* sub : commands)
      if (sub->check_name(args[k])) cmd = sub;
    if (cmd == nullptr || !OptionsOf(args, k, *cmd)) continue;
    std::vector<std::string> rest{args[k]};
    rest.insert(rest.end(), args.begin(), args.begin() + static_cast<long>(k));
    rest.insert(rest.end(), args.begin() + static_cast<long>(k) + 1, args.end());
    return rest;
  }
  return args;  // anything else is left for the parser to report
}

int ReportParseError(CLI::App& app, const CLI::ParseError& e,
                     const std::vector<std::string>& args, bool json) {
  CLI::App* cmd = &app;
  while (!cmd->get_subcommands().empty()) cmd = cmd->get_subcommands().front();
  std::string message = e.what();
  std::string hint, name_said;
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    // The left-over arguments, in the order the user typed them.
    std::vector<std::string> left = app.remaining(true), extras;
    for (const auto& a : args) {
      auto it = std::find(left.begin(), left.end(), a);
      if (it == left.end()) continue;
      extras.push_back(a);
      left.erase(it);
    }
    std::string first = extras.empty() ? "" : extras.front();
    std::string word;  // at the top level: the word where a command should be
    for (size_t i = 0; cmd == &app && i < extras.size() && word.empty(); ++i) {
      if (extras[i] == "--root") ++i;
      else if (extras[i][0] != '-') word = extras[i];
    }
    if (!word.empty()) {
      message = "unknown command '" + word + "'";
      hint = NearestName(word, CommandNames(app));
    } else {
      auto opt = std::find_if(extras.begin(), extras.end(),
                              [](const std::string& x) { return x.size() > 1 && x[0] == '-'; });
      if (opt != extras.end()) {
        std::string name = opt->substr(0, opt->find('='));
        message = "unknown option '" + name + "'" +
                  (cmd == &app ? "" : " for " + cmd->get_name());
        hint = NearestName(name, OptionNames(*cmd));
        name_said = name;
      } else if (!first.empty()) {
        message = "unexpected argument '" + first + "'" +
                  (cmd == &app ? "" : " for " + cmd->get_name());
      }
    }
  }
  if (hint == name_said) hint.clear();  // never "'--x' ... did you mean '--x'"
  if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
  std::string usage = UsageLine(*cmd);
  std::string more = cmd == &app ? "modelsync help" : "modelsync help " + cmd->get_name();
  std::fprintf(stderr, "modelsync: %s\n%s\nRun '%s' for more.\n", message.c_str(),
               usage.c_str(), more.c_str());
  if (json) {
    nlohmann::json j = {{"event", "error"}, {"code", "InvalidArgument"}, {"exit", 2},
                        {"message", message}};
    if (!hint.empty()) j["did_you_mean"] = hint;
    std::fputs((j.dump() + "\n").c_str(), stdout);
  }
  return 2;
}

void RegisterHelp(CLI::App& app, int* exit_code) {
  auto topic = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("help", "Show the help of modelsync or of one command");
  cmd->add_option("command", *topic, "The command (pull, status, ...)");
  CLI::App* root = &app;
  cmd->callback([root, topic, exit_code] {
    if (topic->empty()) {
      // root->help() would show the help of the selected command, which is `help` itself.
      std::fputs(root->get_formatter()->make_help(root, "modelsync", CLI::AppFormatMode::Normal).c_str(),
                 stdout);
      return;
    }
    for (CLI::App* sub : Commands(*root)) {
      if (!sub->check_name(*topic)) continue;
      std::fputs(sub->help("modelsync").c_str(), stdout);
      return;
    }
    std::string hint = NearestName(*topic, CommandNames(*root));
    std::fprintf(stderr, "modelsync: unknown command '%s'%s\nusage: modelsync help [COMMAND]\n",
                 topic->c_str(), hint.empty() ? "" : (" (did you mean '" + hint + "'?)").c_str());
    *exit_code = 2;
  });
}

}  // namespace modelsync::cli
