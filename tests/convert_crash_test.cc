// Crash points and power loss over a conversion (issue 19), as crash_test does for a pull
// (issue 6).
//
// The source: the sharded PyTorch checkpoint written by real torch.save
// (tools/torch_fixtures/make_torch_fixtures.py under Debian's /usr/bin/python3), with a
// minimal tokenizer. The scenario, in a forked child through a storage::FaultFileSystem, is
// engine::ConvertModel into a fresh root: conversion into blobs/convert.tmp, fsync, the moves
// into blobs/, the log, the layout, the marker. Every side effect of the FaultFileSystem gets
// an index; the loops stop the child at side effect i (crash: _exit, what is written stays;
// power loss: everything not fsynced dropped, then _exit). After each stop, before anything
// repairs the root, CheckRootInvariants (tests/support/invariants.h) holds: every blob the log
// says verified is there with its hash, models/ matches a manifest, a marker means a complete
// model. Then the real binary converges (`convert` again): it exits 0, leaves no staging
// directory, `verify` exits 0, `rebuild` has nothing to do, and the model is byte for byte the
// one an uninterrupted conversion makes.
//
// CI runs every stride-th point; MODELSYNC_CRASH_STRIDE=1 runs every point.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "engine/env.h"
#include "engine/gguf_convert.h"
#include "fixtures/fixtures.h"
#include "storage/fault_file_system.h"
#include "support/cli_process.h"
#include "support/emulator.h"
#include "support/invariants.h"

using namespace modelsync;
using namespace modelsync::testing;
namespace fs = std::filesystem;

namespace {

constexpr int kCrashExit = 42;
constexpr int kDropFailed = 43;
constexpr int kFailed = 44;
constexpr char kModelId[] = "tiny";

enum class Mode { kCrash, kPowerLoss };

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The converted model's files, name -> bytes.
std::map<std::string, std::string> ModelFiles(const std::string& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + "/models/local/" + kModelId, ec))
    out[e.path().filename().string()] = Slurp(e.path().string());
  return out;
}

class Harness {
 public:
  Harness() : fx_(FixtureOptions()) {
    const std::string made = base_.path() + "/torch";
    const std::string cmd = "/usr/bin/python3 '" MODELSYNC_SOURCE_DIR
                            "/tools/torch_fixtures/make_torch_fixtures.py' '" + made + "' >/dev/null";
    INFO("the fixtures need Debian's python3-torch (tools/install-deps.sh)");
    REQUIRE(std::system(cmd.c_str()) == 0);
    src_ = base_.path() + "/src";
    fs::create_directories(src_);
    for (const auto& e : fs::directory_iterator(made + "/sharded")) fs::copy(e.path(), src_ + "/" + e.path().filename().string());
    std::ofstream(src_ + "/tokenizer.json") << R"({"version":"1.0","model":{"type":"BPE","vocab":{"a":0},"merges":[]}})";
    std::ofstream(src_ + "/tokenizer_config.json") << R"({"tokenizer_class":"PreTrainedTokenizerFast"})";
  }

  static fixtures::FixtureOptions FixtureOptions() {
    fixtures::FixtureOptions fo;
    fo.weights_bytes = 4096;
    fo.only = {"versions"};
    return fo;
  }

  const FixtureDir& fixture() const { return fx_; }
  const std::string& base() const { return base_.path(); }
  const std::string& src() const { return src_; }

  // Converts into root in a child stopping at side effect stop_at (0 = never); the exit code,
  // and for stop_at 0 the number of side effects.
  std::pair<int, uint64_t> Run(const std::string& root, uint64_t stop_at, Mode mode) {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(p[0]);
      storage::FaultFileSystem ffs(storage::RealFileSystem());
      if (stop_at) {
        ffs.SetHook([&ffs, stop_at, mode](storage::FsOp, uint64_t index, const std::string&) {
          if (index != stop_at) return;
          if (mode == Mode::kPowerLoss) {
            ffs.Freeze();
            if (!ffs.DropUnsynced(storage::FaultFileSystem::LossMode::kZero).ok()) ::_exit(kDropFailed);
          }
          ::_exit(kCrashExit);
        });
      }
      engine::Env env = engine::RealEnv();
      env.fs = &ffs;
      engine::ConvertModelOptions o;
      o.root = root;
      o.source = src_;
      o.model_id = kModelId;
      auto r = engine::ConvertModel(env, o);
      uint64_t total = ffs.TotalCount();
      (void)!::write(p[1], &total, sizeof total);
      ::_exit(r.ok() ? 0 : kFailed);
    }
    ::close(p[1]);
    uint64_t total = 0;
    (void)!::read(p[0], &total, sizeof total);
    ::close(p[0]);
    return {WaitExit(pid), total};
  }

 private:
  FixtureDir fx_;
  TempDir base_;
  std::string src_;
};

void RunLoop(Mode mode, uint64_t ci_points) {
  Harness h;
  const std::string ref_root = h.base() + "/ref";
  // Plain locals, not a structured binding: INFO's lambda captures them (clang 14 cannot
  // capture a binding).
  const auto reference_run = h.Run(ref_root, 0, mode);
  const int code = reference_run.first;
  const uint64_t total = reference_run.second;
  REQUIRE(code == 0);
  REQUIRE(total > 20);
  const auto reference = ModelFiles(ref_root);
  REQUIRE(reference.count("model.safetensors"));
  REQUIRE(fs::is_regular_file(ref_root + "/" + kModelId));
  uint64_t stride = std::max<uint64_t>(1, total / ci_points);
  if (const char* s = std::getenv("MODELSYNC_CRASH_STRIDE"); s && *s) stride = std::max(1, std::atoi(s));
  std::set<uint64_t> at;
  for (uint64_t i = 1; i <= total; i += stride) at.insert(i);
  for (uint64_t i = total > 10 ? total - 10 : 1; i <= total; ++i) at.insert(i);  // the adoption
  uint64_t stopped = 0;
  for (uint64_t i : at) {
    const std::string root = h.base() + "/r" + std::to_string(i);
    auto [rc, unused] = h.Run(root, i, mode);
    (void)unused;
    INFO(std::string(mode == Mode::kCrash ? "crash" : "power loss"), " at side effect ", i, " of ", total);
    REQUIRE(rc != kDropFailed);
    REQUIRE((rc == kCrashExit || rc == 0));
    stopped += rc == kCrashExit;
    if (fs::exists(root + "/.modelsync")) CHECK(CheckRootInvariants(root, h.fixture()) == "");
    const std::map<std::string, std::string> env = {{"MODELSYNC_ROOT", root}};
    auto c = RunCli({"convert", h.src(), "--id", kModelId}, env);
    INFO(c.out, c.err);
    REQUIRE(c.exit_code == 0);
    CHECK(!fs::exists(root + "/.modelsync/blobs/convert.tmp"));
    CHECK(ModelFiles(root) == reference);
    CHECK(fs::is_regular_file(root + "/" + kModelId));
    auto v = RunCli({"verify"}, env);
    INFO(v.out, v.err);
    CHECK(v.exit_code == 0);
    auto rb = RunCli({"rebuild", "--json"}, env);
    CHECK(rb.exit_code == 0);
    CHECK(rb.out.find("\"dir_rebuilt\":false") != std::string::npos);
    CHECK(CheckRootInvariants(root, h.fixture()) == "");
    fs::remove_all(root);
  }
  MESSAGE(std::string(mode == Mode::kCrash ? "crash" : "power loss"), ": ", total, " side effects, ",
          at.size(), " points run (stride ", stride, "), ", stopped, " stopped and converged");
  CHECK(stopped > 0);
}

}  // namespace

TEST_CASE("a crash at every side effect of a conversion converges to the same model") {
  RunLoop(Mode::kCrash, 20);
}

TEST_CASE("power loss (unsynced bytes zeroed) during a conversion keeps every claim true") {
  RunLoop(Mode::kPowerLoss, 8);
}
