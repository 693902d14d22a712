// The command line people already know (issue 15), through the real binary: every argument
// error is exit 2 with a usage line and a "did you mean"; what people paste for a repo (URLs,
// org/name@rev, org/name:rev, short commits, model ids) names the same repo and revision in
// every command; help, -V, --root (and any of a command's options) before the command, aliases; the watch list's edges; what
// `cmake --install` puts in place. (Waits, signals and TLS: tests/cli_waits_test.cc.)
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli_test_util.h"

using namespace modelsync;
using namespace modelsync::testing;
using namespace modelsync::testing::cli;
using nlohmann::json;

TEST_CASE("every argument error is exit 2 with what was wrong, a usage line and a near miss") {
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()}, {"HF_ENDPOINT", "\x01unset"}};
  struct Case {
    std::vector<std::string> args;
    std::string says;  // in stderr
    std::string usage;  // the usage line's command
  };
  std::vector<Case> cases = {
      {{"pul", "a/b"}, "unknown command 'pul' (did you mean 'pull'?)", "modelsync [OPTIONS]"},
      {{"stauts"}, "did you mean 'status'?", "modelsync [OPTIONS]"},
      {{"pull", "a/b", "--revison", "v1"}, "unknown option '--revison' for pull (did you mean '--revision'?)", "modelsync pull"},
      {{"pull"}, "repo is required", "modelsync pull"},
      {{"pull", "a/b", "--connections", "100"}, "not in range", "modelsync pull"},
      {{"pull", "a/b", "--revision"}, "--revision", "modelsync pull"},
      {{"pull", "a/b", "--endpoint", "ftp://x"}, "not http or https", "modelsync pull"},
      {{"verify", "--rapair"}, "did you mean '--repair'?", "modelsync verify"},
      {{"log", "--form", "3"}, "did you mean '--from'?", "modelsync log"},
      {{"track", "a/b", "--every", "soon"}, "bad duration", ""},
      {{"gc", "extra"}, "unexpected argument 'extra'", "modelsync gc"},
      {{"help", "pul"}, "did you mean 'pull'?", "modelsync help"},
  };
  for (const auto& c : cases) {
    auto r = RunCli(c.args, env);
    INFO(Show(c.args, r));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.says) != std::string::npos);
    if (!c.usage.empty()) CHECK(r.err.find("usage: " + c.usage) != std::string::npos);
    CHECK(r.out.empty());
  }
  // A malformed environment variable is an argument error too, naming it.
  EnvMap bad = env;
  bad["HF_ENDPOINT"] = "ftp://nowhere";
  auto r = RunCli({"pull", "a/b"}, bad);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("HF_ENDPOINT") != std::string::npos);
  // Under --json the error is also one object on stdout.
  r = RunCli({"pull", "a/b", "--json", "--conections", "3"}, env);
  CHECK(r.exit_code == 2);
  auto lines = JsonLines(r.out);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["event"] == "error");
  CHECK(lines[0]["code"] == "InvalidArgument");
  CHECK(lines[0]["exit"] == 2);
  CHECK(lines[0]["did_you_mean"] == "--connections");
}

TEST_CASE("help, -V, --root before the command, the rm alias") {
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", "\x01unset"}, {"XDG_DATA_HOME", root.path()}};
  auto v = RunCli({"-V"}, env);
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("modelsync ", 0) == 0);
  CHECK(RunCli({"--version"}, env).out == v.out);
  auto h = RunCli({"help"}, env);
  CHECK(h.exit_code == 0);
  CHECK(h.out.find("Commands:") != std::string::npos);
  CHECK(h.out.find("pull") != std::string::npos);
  auto hp = RunCli({"help", "pull"}, env);
  CHECK(hp.exit_code == 0);
  CHECK(hp.out == RunCli({"pull", "--help"}, env).out);
  CHECK(hp.out.find("Usage: modelsync pull") != std::string::npos);
  CHECK(RunCli({"help", "rm"}, env).out == RunCli({"help", "remove"}, env).out);

  // --root before the command is the same as after it: a missing root is named either way.
  std::string missing = root.path() + "/no-such-root";
  auto before = RunCli({"--root", missing, "status"}, env);
  auto after = RunCli({"status", "--root", missing}, env);
  auto eq = RunCli({"--root=" + missing, "status"}, env);
  CHECK(before.exit_code == 2);
  CHECK(before.err.find(missing) != std::string::npos);
  CHECK(before.err == after.err);
  CHECK(eq.err == after.err);
  auto rm = RunCli({"--root", missing, "rm", "a/b"}, env);
  CHECK(rm.exit_code != 0);
  CHECK(rm.err.find("unknown command") == std::string::npos);

  // Any of the command's own options may come first too, with its value.
  auto json_first = RunCli({"--json", "status", "--root", missing}, env);
  auto json_after = RunCli({"status", "--json", "--root", missing}, env);
  CHECK(json_first.exit_code == 2);
  CHECK(json_first.out == json_after.out);
  CHECK(json_first.err == json_after.err);
  CHECK(json_first.out.find("\"event\":\"error\"") != std::string::npos);
  auto conn = RunCli({"--connections", "100", "pull", "a/b"}, env);
  CHECK(conn.exit_code == 2);
  CHECK(conn.err.find("not in range") != std::string::npos);
  // A value that is a command's name stays the value of the option before it.
  auto value = RunCli({"--connections", "log", "pull", "a/b"}, env);
  CHECK(value.exit_code == 2);
  CHECK(value.err.find("usage: modelsync pull") != std::string::npos);
  // One the command does not have is reported as before, never "did you mean" itself.
  auto unknown = RunCli({"--revison", "v1", "pull", "a/b"}, env);
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("did you mean '--revision'?") != std::string::npos);
  auto other = RunCli({"--repair", "status"}, env);
  CHECK(other.exit_code == 2);
  CHECK(other.err.find("unknown option '--repair'") != std::string::npos);
  CHECK(other.err.find("did you mean '--repair'") == std::string::npos);
}

TEST_CASE("what people paste names the same repo and revision") {
  Hub hub;
  const std::string v1 = hub.Commit(kVersions, "v1");
  const std::string main_commit = hub.Commit(kVersions, "main");
  REQUIRE(v1 != main_commit);
  const std::string url = hub.emu.hub_url() + "/" + kVersions;
  const std::vector<std::vector<std::string>> forms = {
      {std::string(kVersions) + "@v1"},
      {std::string(kVersions) + ":v1"},
      {url + "/tree/v1"},
      {url + "/blob/v1/config.json"},
      {"https://huggingface.co/" + std::string(kVersions) + "/tree/v1/"},
      {"hf.co/" + std::string(kVersions) + "@v1"},
      {kVersions, "--revision", v1.substr(0, 7)},  // a short commit, resolved by the hub
      {std::string(kVersions) + "@" + v1.substr(0, 10)},
  };
  for (const auto& form : forms) {
    TempDir root;
    std::vector<std::string> args = {"pull"};
    args.insert(args.end(), form.begin(), form.end());
    args.push_back("--json");
    auto r = RunCli(args, hub.Env(root.path()));
    INFO(Show(args, r));
    REQUIRE(r.exit_code == 0);
    CHECK(PulledCommit(r) == v1);
  }
  TempDir root;
  EnvMap env = hub.Env(root.path());
  // A bare URL is main.
  auto r = RunCli({"pull", url, "--json"}, env);
  REQUIRE(r.exit_code == 0);
  CHECK(PulledCommit(r) == main_commit);
  // Two revisions that disagree, a dataset, a Space, three segments: exit 2 before any request.
  for (std::vector<std::string> args :
       {std::vector<std::string>{"pull", std::string(kVersions) + "@v1", "--revision", "main"},
        std::vector<std::string>{"pull", "https://huggingface.co/datasets/org/data"},
        std::vector<std::string>{"pull", "https://huggingface.co/spaces/org/app"},
        std::vector<std::string>{"pull", "org/name/extra"},
        std::vector<std::string>{"pull", std::string(kVersions) + "@"},
        std::vector<std::string>{"status", std::string(kVersions) + "@v1"}}) {
    auto bad = RunCli(args, env);
    INFO(Show(args, bad));
    CHECK(bad.exit_code == 2);
  }
  // A short commit this root resolved is known offline, from the log alone.
  r = RunCli({"pull", kVersions, "--revision", v1.substr(0, 8), "--json"}, env);
  REQUIRE(r.exit_code == 0);
  EnvMap offline = env;
  offline["HF_HUB_OFFLINE"] = "1";
  r = RunCli({"pull", std::string(kVersions) + "@" + v1.substr(0, 9), "--json"}, offline);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(PulledCommit(r) == v1);
  // A short commit nobody has: the hub says it is not there (exit 8), named.
  r = RunCli({"pull", kVersions, "--revision", "0000000"}, env);
  CHECK(r.exit_code == 8);
  CHECK(r.err.find("0000000") != std::string::npos);
}

TEST_CASE("a model id names its repo in status, verify, diff, remove") {
  Hub hub;
  TempDir root;
  EnvMap env = hub.Env(root.path());
  REQUIRE(RunCli({"pull", kModel, "--id", "my-tiny", "--quiet"}, env).exit_code == 0);
  auto st = RunCli({"status", "my-tiny", "--json"}, env);
  INFO(st.out, st.err);
  REQUIRE(st.exit_code == 0);
  auto lines = JsonLines(st.out);
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0]["repos"].size() == 1);
  CHECK(lines[0]["repos"][0]["repo"] == kModel);
  auto text = RunCli({"status", "my-tiny"}, env);
  CHECK(text.err.find("model id my-tiny is " + std::string(kModel)) != std::string::npos);
  CHECK(RunCli({"verify", "my-tiny"}, env).exit_code == 0);
  CHECK(RunCli({"verify", hub.emu.hub_url() + "/" + kModel}, env).exit_code == 0);
  auto diff = RunCli({"diff", "my-tiny", "--json"}, env);
  CHECK(diff.exit_code == 0);
  CHECK(json::parse(diff.out)["repo"] == kModel);
  // A word that is no model id here and no catalog name: exit 2 saying what it could be.
  auto none = RunCli({"status", "nobody"}, env);
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("catalog") != std::string::npos);
  // A catalog name says what it expanded to.
  auto cat = RunCli({"status", "qwen2.5-0.5b"}, env);
  CHECK(cat.err.find("catalog name qwen2.5-0.5b is mlx-community/") != std::string::npos);
  auto rm = RunCli({"rm", "my-tiny"}, env);
  INFO(rm.out, rm.err);
  CHECK(rm.exit_code == 0);
  CHECK(::access((root.path() + "/my-tiny").c_str(), F_OK) != 0);
}

TEST_CASE("the watch list: --every 0, intervals as typed, tracking again keeps the revision") {
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()}, {"HF_ENDPOINT", "\x01unset"}};
  REQUIRE(RunCli({"track", "org/one", "--revision", "v1", "--every", "10m"}, env).exit_code == 0);
  REQUIRE(RunCli({"track", "org/two", "--every", "0"}, env).exit_code == 0);
  auto list = RunCli({"list"}, env);
  INFO(list.out, list.err);
  CHECK(list.out.find("org/one@v1") != std::string::npos);
  CHECK(list.out.find("every 10m") != std::string::npos);
  CHECK(list.out.find("600s") == std::string::npos);
  CHECK(list.out.find("org/two@main") != std::string::npos);
  CHECK(list.out.find("on sync --now only") != std::string::npos);
  // Again, to change the interval: the revision recorded stays.
  REQUIRE(RunCli({"track", "org/one", "--every", "2h"}, env).exit_code == 0);
  auto j = JsonLines(RunCli({"list", "--json"}, env).out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["repo"] == "org/one");
  CHECK(j[0]["ref"] == "v1");
  CHECK(j[0]["every"] == "2h");
  CHECK(j[0]["every_ms"] == 7200000);
  // --revision given: it replaces it.
  REQUIRE(RunCli({"track", "org/one", "--revision", "main"}, env).exit_code == 0);
  j = JsonLines(RunCli({"list", "--json"}, env).out);
  CHECK(j[0]["ref"] == "main");
  CHECK(j[0]["every"] == "2h");
}

TEST_CASE("cmake --install: binary, completions, man page, systemd unit, launchd agent") {
  const char* build = std::getenv("MODELSYNC_BUILD_DIR");
  REQUIRE(build != nullptr);
  TempDir prefix;
  std::string p = prefix.path();
  auto sh = [](const std::string& cmd, std::string* out) {
    std::string full = cmd + " 2>&1";
    FILE* f = ::popen(full.c_str(), "r");
    if (!f) return -1;
    char buf[4096];
    size_t n;
    out->clear();
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
    int rc = ::pclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  std::string out;
  REQUIRE(sh("cmake --install '" + std::string(build) + "' --prefix '" + p + "'", &out) == 0);
  INFO(out);
  CHECK(sh("'" + p + "/bin/modelsync' --version", &out) == 0);
  CHECK(out.rfind("modelsync ", 0) == 0);
  for (const char* f : {"share/bash-completion/completions/modelsync",
                        "share/zsh/site-functions/_modelsync",
                        "share/fish/vendor_completions.d/modelsync.fish",
                        "share/man/man1/modelsync.1", "share/systemd/user/modelsync.service",
                        "share/modelsync/launchd/dev.modelsync.daemon.plist"}) {
    INFO(f);
    CHECK(::access((p + "/" + f).c_str(), R_OK) == 0);
  }
  // The man page has every command's help.
  std::ifstream man(p + "/share/man/man1/modelsync.1");
  std::string page((std::istreambuf_iterator<char>(man)), std::istreambuf_iterator<char>());
  CHECK(page.find(".SS pull") != std::string::npos);
  CHECK(page.find(".SS daemon") != std::string::npos);

  // The unit starts the installed binary, does not wait for network-online.target, and
  // systemd itself finds nothing wrong with it.
  std::string unit_path = p + "/share/systemd/user/modelsync.service";
  std::ifstream unit_in(unit_path);
  std::string unit((std::istreambuf_iterator<char>(unit_in)), std::istreambuf_iterator<char>());
  CHECK(unit.find("\nExecStart=" + p + "/bin/modelsync daemon") != std::string::npos);
  CHECK(unit.find("\nWants=network-online") == std::string::npos);
  CHECK(unit.find("\nAfter=network-online") == std::string::npos);
  CHECK(unit.find("\nRestart=on-failure") != std::string::npos);
  int rc = sh("systemd-analyze verify --man=no '" + unit_path + "'", &out);
  INFO("systemd-analyze: ", out);
  CHECK(rc == 0);
  CHECK(out.empty());
  // The launchd agent is a valid property list naming the installed binary.
  rc = sh("python3 -c \"import plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); "
          "print(d['Label'], d['ProgramArguments'][0], d['ProgramArguments'][1])\" '" + p +
              "/share/modelsync/launchd/dev.modelsync.daemon.plist'",
          &out);
  CHECK(rc == 0);
  CHECK(out == "dev.modelsync.daemon " + p + "/bin/modelsync daemon\n");

  // The bash completion, sourced in bash, completes a command and an option.
  std::string script = p + "/share/bash-completion/completions/modelsync";
  auto complete = [&](const std::string& words, int cword) {
    std::string o;
    sh("bash -c 'source \"" + script + "\"; COMP_WORDS=(" + words + "); COMP_CWORD=" +
           std::to_string(cword) + "; _modelsync; echo \"${COMPREPLY[*]}\"'",
       &o);
    return o;
  };
  CHECK(complete("modelsync pu", 1) == "pull\n");
  CHECK(complete("modelsync st", 1) == "status\n");
  CHECK(complete("modelsync pull --revi", 2) == "--revision\n");
  CHECK(complete("modelsync --root /tmp veri", 3) == "verify\n");
  CHECK(complete("modelsync verify --rep", 2) == "--repair\n");
  CHECK(complete("modelsync completion f", 2) == "fish\n");
}

