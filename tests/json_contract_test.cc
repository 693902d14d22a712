// --json is a contract (issue 15): every command's output, on success and on failure, is
// checked against its schema in docs/json/ (JSON Schema 2020-12) by tools/check_json.py
// (python3-jsonschema). A failure is one error object whose "exit" is the exit status.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures/fixtures.h"
#include "support/cli_process.h"
#include "support/emulator.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using EnvMap = std::map<std::string, std::string>;
constexpr const char* kModel = fixtures::kModelRepo;
constexpr const char* kVersions = fixtures::kVersionsRepo;

// Runs `modelsync ARGS --json`, checks the exit status, and validates stdout against the
// command's schema. Returns the parsed lines.
class Contract {
 public:
  explicit Contract(EnvMap env) : env_(std::move(env)) {}

  // error_object: a failure that is an error (not a report, like verify's exit 3 on damage).
  std::vector<json> Run(std::vector<std::string> args, int want_exit) {
    return Run(std::move(args), want_exit, want_exit != 0);
  }
  std::vector<json> Run(std::vector<std::string> args, int want_exit, bool error_object) {
    const std::string command = args[0] == "rm" ? "remove" : args[0];
    args.push_back("--json");
    auto r = RunCli(args, env_);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    INFO(shown, "\nexit ", r.exit_code, "\nout: ", r.out, "\nerr: ", r.err);
    CHECK(r.exit_code == want_exit);
    std::string file = out_.path() + "/" + std::to_string(++n_) + ".jsonl";
    std::ofstream(file) << r.out;
    std::string line = "python3 '" MODELSYNC_SOURCE_DIR "/tools/check_json.py' '" MODELSYNC_SOURCE_DIR
                       "/docs/json' " + command + " '" + file + "' 2>&1";
    std::string report;
    if (FILE* p = ::popen(line.c_str(), "r")) {
      char buf[4096];
      size_t got;
      while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) report.append(buf, got);
      int rc = ::pclose(p);
      INFO("check_json: ", report);
      CHECK(WIFEXITED(rc));
      CHECK(WEXITSTATUS(rc) == 0);
    } else {
      FAIL("cannot run " << line);
    }
    std::vector<json> lines;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(json::parse(l));
    if (error_object) {
      // A failure under --json is one error object, last, carrying the exit status.
      REQUIRE(!lines.empty());
      CHECK(lines.back()["event"] == "error");
      CHECK(lines.back()["exit"] == want_exit);
    }
    ++checked_[command];
    return lines;
  }
  const std::map<std::string, int>& checked() const { return checked_; }

 private:
  EnvMap env_;
  TempDir out_;
  int n_ = 0;
  std::map<std::string, int> checked_;
};

}  // namespace

TEST_CASE("every command's --json, success and failure, is valid against its schema") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 10;
  fo.only = {"model", "versions"};
  FixtureDir fx(fo);
  EmulatorProcess emu(EmulatorProcess::Options{fx.path(), "", 1000, false, {}});
  REQUIRE(emu.Start().ok());
  TempDir root, work;
  EnvMap env = {{"MODELSYNC_ROOT", root.path()},        {"HF_ENDPOINT", emu.hub_url()},
                {"HF_TOKEN", "\x01unset"},              {"HF_HUB_OFFLINE", "\x01unset"},
                {"HF_HOME", root.path() + "/.hf-home"}, {"MODELSYNC_STALL_TIMEOUT", "2s"}};
  Contract c(env);
  const std::string missing_root = work.path() + "/no-root";

  // pull: a fresh pull with a Retry-After on the way, an update, a no-op, a failure.
  REQUIRE(emu.SetFaults({{{"match", "config.json"}, {"listener", "hub"}, {"times", 1},
                          {"status_sequence", {429}}, {"retry_after", 1}}})
              .ok());
  auto pulled = c.Run({"pull", std::string(kVersions) + "@v1"}, 0);
  bool saw_retry = false;
  for (const auto& j : pulled) saw_retry |= j.value("event", "") == "retry";
  CHECK(saw_retry);
  REQUIRE(emu.SetFaults(json::array()).ok());
  c.Run({"pull", kVersions}, 0);
  c.Run({"pull", kVersions}, 0);
  c.Run({"pull", kModel, "--id", "tiny"}, 0);
  c.Run({"pull", "nobody/nothing"}, 8);
  c.Run({"pull", kModel, "--conections", "2"}, 2);

  c.Run({"status"}, 0);
  c.Run({"status", "tiny"}, 0);
  c.Run({"status", "--root", missing_root}, 2);
  c.Run({"status", "never/pulled"}, 8);
  c.Run({"ls"}, 0);
  c.Run({"ls", "--root", missing_root}, 2);
  c.Run({"log"}, 0);
  c.Run({"log", "--since", "the dawn of time"}, 2);
  c.Run({"diff", std::string(kVersions) + "@v1"}, 0);
  c.Run({"diff", "nobody/nothing"}, 8);
  c.Run({"inspect", "tiny"}, 0);
  c.Run({"inspect", "nobody/nothing"}, 8);
  {  // inspect FILE.gguf: a header with one key and no tensors; then a truncated one.
    std::string g("GGUF\x03\0\0\0", 8);
    auto u64 = [&](uint64_t v) { g.append(reinterpret_cast<const char*>(&v), 8); };
    u64(0);
    u64(1);
    u64(20);
    g += "general.architecture";
    g.append("\x08\0\0\0", 4);
    u64(5);
    g += "llama";
    std::ofstream(work.path() + "/tiny.gguf", std::ios::binary) << g;
    std::ofstream(work.path() + "/cut.gguf", std::ios::binary) << g.substr(0, 30);
    c.Run({"inspect", work.path() + "/tiny.gguf"}, 0);
    c.Run({"inspect", work.path() + "/cut.gguf"}, 2);
  }
  c.Run({"catalog"}, 0);
  c.Run({"catalog", "extra"}, 2);

  c.Run({"track", kVersions, "--every", "10m"}, 0);
  c.Run({"track", kVersions, "--every", "soon"}, 2);
  c.Run({"list"}, 0);
  c.Run({"list", "--root", missing_root}, 2);
  c.Run({"sync"}, 0);
  c.Run({"sync", "--root", missing_root}, 2);
  c.Run({"untrack", kVersions}, 0);
  c.Run({"untrack", kVersions}, 8);

  // verify: clean, then a damaged file (exit 3, issue lines and the summary).
  c.Run({"verify"}, 0);
  std::string blob_file = root.path() + "/models/" + std::string(kModel) + "/config.json";
  fs::permissions(blob_file, fs::perms::owner_write, fs::perm_options::add);
  { std::ofstream(blob_file, std::ios::app) << " "; }
  auto damaged = c.Run({"verify"}, 3, /*error_object=*/false);
  bool issue = false;
  for (const auto& j : damaged) issue |= j.contains("issue");
  CHECK(issue);
  REQUIRE(!damaged.empty());
  CHECK(damaged.back()["damaged"] == true);
  c.Run({"verify", "--repair"}, 0);
  c.Run({"verify", "nobody/nothing"}, 8);

  // rebuild after a deleted marker, gc (dry run and real), remove.
  fs::remove(root.path() + "/tiny");
  c.Run({"rebuild"}, 0);
  c.Run({"rebuild", "--root", missing_root}, 2);
  c.Run({"gc", "--dry-run"}, 0);
  c.Run({"gc"}, 0);
  c.Run({"gc", "--root", missing_root}, 2);

  // add-local from a copy of a pulled model, then remove it.
  std::string src = work.path() + "/local-model";
  fs::create_directories(src);
  for (const auto& e : fs::directory_iterator(root.path() + "/models/" + std::string(kModel)))
    fs::copy_file(e.path(), src + "/" + e.path().filename().string());
  c.Run({"add-local", src, "--id", "mine"}, 0);
  c.Run({"add-local", work.path() + "/no-such-dir", "--id", "other"}, 2);
  c.Run({"rm", "mine"}, 0);
  c.Run({"remove", "never/pulled"}, 8);

  // The Hugging Face cache: export, pull --hf-cache (its "hf_cache" line), import elsewhere.
  const std::string hf = work.path() + "/hf";
  c.Run({"export", kModel, "--hf-cache", hf}, 0);
  c.Run({"export", "never/pulled", "--hf-cache", hf}, 8);
  auto with_export = c.Run({"pull", kVersions, "--hf-cache", hf}, 0);
  bool saw_export = false;
  for (const auto& j : with_export) saw_export |= j.value("event", "") == "hf_cache";
  CHECK(saw_export);
  auto imported = c.Run({"import", "--hf-cache", hf, "--root", work.path() + "/root2"}, 0);
  CHECK(imported.size() == 2);
  c.Run({"import", "--hf-cache", work.path() + "/no-cache"}, 2);

  // Every command with --json was checked, each with a failure.
  for (const char* cmd : {"pull", "status", "ls", "log", "diff", "inspect", "catalog", "track",
                          "list", "sync", "untrack", "verify", "rebuild", "gc", "add-local",
                          "remove", "export", "import"}) {
    INFO(cmd);
    CHECK(c.checked().count(cmd) == 1);
    CHECK(c.checked().at(cmd) >= 2);
    CHECK(fs::exists(std::string(MODELSYNC_SOURCE_DIR) + "/docs/json/" + cmd + ".schema.json"));
  }
}
