// The command line people already know (issue 15), through the real binary: every argument
// error is exit 2 with a usage line and a "did you mean"; what people paste for a repo (URLs,
// org/name@rev, org/name:rev, short commits, model ids) names the same repo and revision in
// every command; help, -V, --root before the command, aliases; the watch list's edges.
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

#include "fixtures/fixtures.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;

namespace {

using EnvMap = std::map<std::string, std::string>;

constexpr const char* kModel = fixtures::kModelRepo;        // mlx-community/Tiny-Model-4bit
constexpr const char* kVersions = fixtures::kVersionsRepo;  // fixtures/versions (v1, main)

struct Hub {
  Hub() : emu(EmulatorProcess::Options{fixtures.path(), "", 1000, false, {}}) {
    REQUIRE(emu.Start().ok());
  }
  static fixtures::FixtureOptions Small() {
    fixtures::FixtureOptions fo;
    fo.weights_bytes = 64u << 10;
    fo.only = {"model", "versions"};
    return fo;
  }
  EnvMap Env(const std::string& root) const {
    return {{"MODELSYNC_ROOT", root},        {"HF_ENDPOINT", emu.hub_url()},
            {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
            {"HF_HOME", root + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  }
  std::string Commit(const std::string& repo, const std::string& ref) const {
    return fixtures.RepoJson(repo)["refs"][ref].get<std::string>();
  }
  FixtureDir fixtures{Small()};
  EmulatorProcess emu;
};

std::vector<json> JsonLines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') v.push_back(json::parse(line));
  return v;
}

// The commit a `pull --json` ended at ("" when it failed).
std::string PulledCommit(const CliResult& r) {
  for (const auto& j : JsonLines(r.out))
    if (j.value("event", "") == "done") return j.value("commit", "");
  return "";
}

std::string Show(const std::vector<std::string>& args, const CliResult& r) {
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  return cmd + "\n exit " + std::to_string(r.exit_code) + "\n out: " + r.out + "\n err: " + r.err;
}

}  // namespace

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

TEST_CASE("Ctrl-C at a terminal: the bar stops, the kept bytes are named, exit 130, resume") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 16u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                          {"throttle_bps", 400000}}})
              .ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},   {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},         {"HF_HUB_OFFLINE", "\x01unset"},
                {"MODELSYNC_CHUNK_BYTES", "1MiB"}, {"MODELSYNC_SMALL_FILE_BYTES", "1MiB"},
                {"HF_HUB_DISABLE_PROGRESS_BARS", "\x01unset"}};
  int master = -1;
  // 4 connections at 400 KB/s each: 16 MiB take ~10 s.
  pid_t pid = SpawnCliInTerminal({"pull", kModel, "--connections", "4"}, env, &master);
  REQUIRE(pid > 0);
  std::string screen;
  auto read_some = [&](int ms) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) return false;
    screen.append(buf, static_cast<size_t>(n));
    return true;
  };
  // Wait until the bar has drawn real progress (MiB moving, 2 s in).
  auto start = std::chrono::steady_clock::now();
  while (screen.find(" MiB/") == std::string::npos ||
         std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2000)) {
    read_some(100);
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(20)) break;
  }
  INFO(screen);
  REQUIRE(screen.find(" MiB/") != std::string::npos);
  CHECK(screen.find("pull [") != std::string::npos);  // a bar, because this is a terminal
  const size_t before_ctrl_c = screen.size();
  REQUIRE(::write(master, "\x03", 1) == 1);
  auto pressed = std::chrono::steady_clock::now();
  while (read_some(2000)) {
  }
  int code = WaitExit(pid);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - pressed).count();
  ::close(master);
  std::string after = screen.substr(before_ctrl_c);
  INFO(after);
  CHECK(code == 130);
  CHECK(took < 2.5);  // within a second when idle; slack for a loaded CI machine
  CHECK(after.find("interrupted (SIGINT): ") != std::string::npos);
  CHECK(after.find(" kept; run the same command to resume") != std::string::npos);
  // The bar stopped: nothing is drawn after the message.
  CHECK(after.find("pull [", after.find("interrupted")) == std::string::npos);

  // What the log keeps is what the message said, and the next pull does not fetch it again.
  auto st = RunCli({"status", kModel, "--json"}, env);
  auto lines = JsonLines(st.out);
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0]["repos"].size() == 1);
  uint64_t kept = lines[0]["repos"][0]["bytes_done"].get<uint64_t>();
  uint64_t total = lines[0]["repos"][0]["bytes_total"].get<uint64_t>();
  CHECK(kept >= (1u << 20));
  CHECK(kept < total);
  REQUIRE(emu.SetFaults(json::array()).ok());
  auto again = RunCli({"pull", kModel, "--json"}, env);
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  uint64_t fetched = 0;
  for (const auto& j : JsonLines(again.out))
    if (j.value("event", "") == "done") fetched = j["bytes_fetched"].get<uint64_t>();
  CHECK(fetched + kept <= total);
  CHECK(fetched + kept >= total - (1u << 20));  // small files kept whole or not at all
}

TEST_CASE("never silent: a Retry-After wait, a lost connection and a held root are said") {
  Hub hub;
  TempDir root;
  EnvMap env = hub.Env(root.path());
  env["MODELSYNC_SMALL_FILE_BYTES"] = "16KiB";
  REQUIRE(hub.emu
              .SetFaults({{{"match", "config.json"}, {"listener", "hub"}, {"times", 1},
                           {"status_sequence", {429}}, {"retry_after", 1}},
                          {{"match", "model.safetensors"}, {"listener", "cdn"}, {"times", 1},
                           {"drop_after_bytes", 20000}}})
              .ok());
  auto r = RunCli({"pull", kModel, "--json"}, env);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  bool asked = false, resumed = false;
  for (const auto& j : JsonLines(r.out)) {
    if (j.value("event", "") != "retry") continue;
    std::string m = j["message"];
    if (m.find("the hub asked to wait 1.0 s (HTTP 429, rate limited) before retrying") == 0) {
      asked = true;
      CHECK(j["delay_ms"] == 1000);
      CHECK(j["retry_at"].get<std::string>().size() == 8);  // HH:MM:SS
      CHECK(m.find("config.json") != std::string::npos);
    }
    if (m.find("connection lost during") == 0 && m.find("resuming where it stopped") != std::string::npos)
      resumed = m.find("model.safetensors") != std::string::npos;
  }
  CHECK(asked);
  CHECK(resumed);

  // In text, on stderr, with when the wait ends.
  TempDir root2;
  EnvMap env2 = hub.Env(root2.path());
  REQUIRE(hub.emu
              .SetFaults({{{"match", "config.json"}, {"listener", "hub"}, {"times", 1},
                           {"status_sequence", {503}}, {"retry_after", 1}}})
              .ok());
  r = RunCli({"pull", kModel}, env2);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("the hub asked to wait 1.0 s (HTTP 503, service unavailable)") !=
        std::string::npos);
  CHECK(r.err.find("; retrying at ") != std::string::npos);

  // A command that waits for the root's lock says who holds it.
  REQUIRE(hub.emu
              .SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                           {"throttle_bps", 20000}}})
              .ok());
  TempDir root3;
  EnvMap env3 = hub.Env(root3.path());
  pid_t pull = SpawnCli({"pull", kModel, "--quiet"}, env3, "", root3.path() + "/pull.err");
  auto lock_held = [&] {
    std::string lock;
    std::ifstream in(root3.path() + "/.modelsync/lock");
    std::getline(in, lock);
    return lock == std::to_string(pull);
  };
  for (int i = 0; i < 200 && !lock_held(); ++i) ::usleep(25000);
  REQUIRE(lock_held());
  pid_t gc = SpawnCli({"gc"}, env3, "", root3.path() + "/gc.err");
  std::string said;
  for (int i = 0; i < 200 && said.find("waiting") == std::string::npos; ++i) {
    ::usleep(25000);
    std::ifstream in(root3.path() + "/gc.err");
    said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ::kill(gc, SIGKILL);
  ::kill(pull, SIGKILL);
  WaitExit(gc);
  WaitExit(pull);
  CHECK(said.find("root " + root3.path() + " is in use by pid " + std::to_string(pull) +
                  " (modelsync pull " + kModel + " --quiet); waiting for it to finish") !=
        std::string::npos);
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

TEST_CASE("--token reaches the hub for this run only and is written nowhere") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 10;
  fo.only = {"gated"};
  FixtureDir fx(fo);
  const std::string token = "hf_cli_test_token_0123456789";
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), token, 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()}, {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},       {"HF_HUB_OFFLINE", "\x01unset"},
                {"HF_HOME", root.path() + "/.hf-home"}};
  auto without = RunCli({"pull", fixtures::kGatedRepo}, env);
  CHECK(without.exit_code == 8);
  auto with = RunCli({"pull", fixtures::kGatedRepo, "--token", token, "--json"}, env);
  INFO(with.err);
  CHECK(with.exit_code == 0);
  CHECK(with.out.find(token) == std::string::npos);
  CHECK(with.err.find(token) == std::string::npos);
  // The endpoint is plain HTTP: the user is told, once, that the token travels in cleartext.
  size_t warnings = 0;
  for (const auto& j : JsonLines(with.out))
    if (j.value("event", "") == "warning" &&
        j["message"].get<std::string>().find("cleartext") != std::string::npos)
      ++warnings;
  CHECK(warnings == 1);
  // Nothing under the root holds it (the log, the index, the lock, the model files).
  auto grep = RunCli({"log", "--json"}, env);
  CHECK(grep.out.find(token) == std::string::npos);
  std::string line = "grep -rqF '" + token + "' '" + root.path() + "'";
  CHECK(std::system(line.c_str()) != 0);
}

TEST_CASE("a hub that stops sending is reported within the stall timeout") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 4u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"}, {"times", 1},
                          {"stall_after_bytes", 100000}, {"stall_ms", 30000}}})
              .ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},   {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},         {"HF_HUB_OFFLINE", "\x01unset"},
                {"MODELSYNC_STALL_TIMEOUT", "1s"}, {"MODELSYNC_SMALL_FILE_BYTES", "1MiB"},
                {"MODELSYNC_CHUNK_BYTES", "8MiB"}};
  auto start = std::chrono::steady_clock::now();
  auto r = RunCli({"pull", kModel, "--json"}, env);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.out, r.err);
  CHECK(r.exit_code == 0);
  CHECK(took < 10);  // not the 30 s the hub stayed silent
  bool said = false;
  for (const auto& j : JsonLines(r.out))
    if (j.value("event", "") == "retry" &&
        j["message"].get<std::string>().find("stalled") != std::string::npos)
      said = true;
  CHECK(said);
}

TEST_CASE("SIGTERM during sync: stops at once, says so, exit 143, the next sync resumes") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 8u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  REQUIRE(emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                          {"throttle_bps", 500000}}})
              .ok());
  TempDir root;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},   {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},         {"HF_HUB_OFFLINE", "\x01unset"},
                {"MODELSYNC_CHUNK_BYTES", "1MiB"}, {"MODELSYNC_SMALL_FILE_BYTES", "1MiB"}};
  REQUIRE(RunCli({"track", kModel}, env).exit_code == 0);
  std::string out = root.path() + "/sync.out";
  pid_t pid = SpawnCli({"sync", "--json"}, env, out, root.path() + "/sync.err");
  ::usleep(1500000);
  auto sent = std::chrono::steady_clock::now();
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int code = WaitExit(pid);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  CHECK(code == 143);
  CHECK(took < 2.5);  // within a second when idle; slack for a loaded CI machine
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto lines = JsonLines(text);
  REQUIRE(!lines.empty());
  CHECK(lines.back()["event"] == "interrupted");
  CHECK(lines.back()["signal"] == "SIGTERM");
  CHECK(lines.back()["repo"] == kModel);
  CHECK(lines.back()["exit"] == 143);
  REQUIRE(emu.SetFaults(json::array()).ok());
  auto again = RunCli({"sync", "--json"}, env);
  INFO(again.out, again.err);
  CHECK(again.exit_code == 0);
  auto done = JsonLines(again.out);
  REQUIRE(done.size() == 1);
  CHECK(done[0]["ok"] == true);
  CHECK(done[0]["bytes_fetched"].get<uint64_t>() < (8u << 20));  // resumed, not restarted
}

namespace {

// Runs a shell command; its exit status.
int Shell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A free TCP port on 127.0.0.1 (bound and released: the server started next takes it).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// `openssl s_server -WWW` on 127.0.0.1 with a certificate; stopped by its pid.
struct TlsServer {
  // mode "-WWW": files as text/plain bodies; "-HTTP": each file is a whole raw HTTP response.
  TlsServer(const std::string& dir, const std::string& cert, const std::string& key,
            const char* mode = "-WWW") {
    port = FreePort();
    pid = ::fork();
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      if (::chdir(dir.c_str()) != 0) ::_exit(126);
      std::string accept = "127.0.0.1:" + std::to_string(port);
      ::execlp("openssl", "openssl", "s_server", "-quiet", mode, "-accept", accept.c_str(),
               "-cert", cert.c_str(), "-key", key.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !Accepts(port); ++i) ::usleep(20000);
  }
  ~TlsServer() {
    ::kill(pid, SIGTERM);
    WaitExit(pid);
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
  int port = 0;
  pid_t pid = -1;
};

}  // namespace

TEST_CASE("TLS: a private CA from SSL_CERT_FILE & co. or --ca-bundle; failures name their cause") {
  TempDir d;
  const std::string p = d.path();
  // A CA, a server certificate for 127.0.0.1 it signed, one for another name, a self-signed one.
  std::string mk =
      "cd '" + p + "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj '/CN=modelsync test CA' && "
      "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=127.0.0.1' && "
      "printf 'subjectAltName=IP:127.0.0.1\\n' > ip.cnf && "
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ip.cnf && "
      "printf 'subjectAltName=DNS:other.example\\n' > dns.cnf && "
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out other.pem "
      "-days 2 -extfile dns.cnf && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 2 "
      "-subj '/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1' && "
      "mkdir cadir && cp ca.pem cadir/ && openssl rehash cadir";
  REQUIRE(Shell("(" + mk + ") >/dev/null 2>&1") == 0);
  const std::string ca = p + "/ca.pem";
  EnvMap base = {{"MODELSYNC_ROOT", p + "/root"},     {"HF_TOKEN", "\x01unset"},
                 {"HF_HUB_OFFLINE", "\x01unset"},     {"CURL_CA_BUNDLE", "\x01unset"},
                 {"REQUESTS_CA_BUNDLE", "\x01unset"}, {"SSL_CERT_FILE", "\x01unset"},
                 {"SSL_CERT_DIR", "\x01unset"},       {"MODELSYNC_HUB_ATTEMPTS", "1"}};
  auto pull = [&](const TlsServer& s, EnvMap extra, std::vector<std::string> more = {}) {
    EnvMap env = base;
    for (const auto& [k, v] : extra) env[k] = v;
    env["HF_ENDPOINT"] = s.url();
    std::vector<std::string> args = {"pull", "org/name"};
    args.insert(args.end(), more.begin(), more.end());
    return RunCli(args, env);
  };
  {
    TlsServer srv(p, p + "/srv.pem", p + "/srv.key");
    REQUIRE(Accepts(srv.port));
    // Not trusted: the cause in libcurl's words, and how to supply a CA.
    auto r = pull(srv, {});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("TLS failure") != std::string::npos);
    CHECK(r.err.find("unable to get local issuer certificate") != std::string::npos);
    CHECK(r.err.find("SSL_CERT_FILE") != std::string::npos);
    // Trusted through each variable, and the flag: the TLS handshake passes (this server is
    // no hub, so what fails next is its answer, not TLS).
    for (const auto& [name, value] :
         std::vector<std::pair<std::string, std::string>>{{"SSL_CERT_FILE", ca},
                                                          {"CURL_CA_BUNDLE", ca},
                                                          {"REQUESTS_CA_BUNDLE", ca},
                                                          {"SSL_CERT_DIR", p + "/cadir"}}) {
      auto t = pull(srv, {{name, value}});
      INFO(name, ": ", t.err);
      CHECK(t.err.find("TLS failure") == std::string::npos);
      CHECK(t.err.find("not valid JSON") != std::string::npos);
    }
    auto flag = pull(srv, {}, {"--ca-bundle", ca});
    INFO(flag.err);
    CHECK(flag.err.find("TLS failure") == std::string::npos);
    CHECK(flag.err.find("not valid JSON") != std::string::npos);
    // A variable naming no file is an argument error, named.
    auto bad = pull(srv, {{"SSL_CERT_FILE", p + "/missing.pem"}});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("SSL_CERT_FILE") != std::string::npos);
  }
  {
    TlsServer srv(p, p + "/other.pem", p + "/srv.key");  // trusted CA, wrong name
    auto r = pull(srv, {{"SSL_CERT_FILE", ca}});
    INFO(r.err);
    CHECK(r.err.find("TLS failure") != std::string::npos);
    CHECK(r.err.find("no alternative certificate subject name matches") != std::string::npos);
  }
  {
    TlsServer srv(p, p + "/self.pem", p + "/self.key");
    auto r = pull(srv, {});
    INFO(r.err);
    CHECK(r.err.find("TLS failure") != std::string::npos);
    CHECK(r.err.find("self-signed certificate") != std::string::npos);
  }
  {
    // An https hub that redirects to plain http: refused, naming the flag; nothing is fetched
    // from the http side (nothing listens there either: a request would be a connection error).
    std::string www = p + "/www/api/models/org/name/revision";
    REQUIRE(Shell("mkdir -p '" + www + "'") == 0);
    std::ofstream(www + "/main") << "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/x\r\n"
                                    "Content-Length: 0\r\n\r\n";
    TlsServer srv(p + "/www", p + "/srv.pem", p + "/srv.key", "-HTTP");
    auto r = pull(srv, {{"SSL_CERT_FILE", ca}});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("refusing the redirect from https://127.0.0.1") != std::string::npos);
    CHECK(r.err.find("--allow-insecure-redirects") != std::string::npos);
    auto allowed = pull(srv, {{"SSL_CERT_FILE", ca}}, {"--allow-insecure-redirects"});
    INFO(allowed.err);
    CHECK(allowed.err.find("refusing the redirect") == std::string::npos);
    CHECK(allowed.err.find("127.0.0.1:9") != std::string::npos);  // it went there, and failed
  }
}
