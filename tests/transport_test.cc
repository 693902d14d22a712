// Issue 14: the transport is a seam. An app's own transport (here MemoryHub: no socket at all)
// carries whole pulls through engine::Env::transport, and every check above HTTP stays
// modelsync's: identity, hashes, resume from the next byte, the token's origin, the rate limit.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "base/hash.h"
#include "engine/env.h"
#include "engine/pull.h"
#include "fixtures/fixtures.h"
#include "net/hub.h"
#include "support/emulator.h"
#include "support/memory_hub.h"

using namespace modelsync;
using namespace modelsync::testing;
namespace fs = std::filesystem;

namespace {

constexpr char kToken[] = "hf_apptransport_0123456789";

fixtures::FixtureOptions ModelOnly() {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 3u << 20;
  fo.only = {"model"};
  return fo;
}

engine::Env AppEnv(MemoryHub& hub) {
  engine::Env env = hub.env();
  env.config.token = kToken;
  env.config.chunk_bytes = 1u << 20;          // 3 ranges for the weights
  env.config.small_file_bytes = 256u << 10;  // the weights are a ranged, partial file
  return env;
}

// The fixture object of the weights (the CDN serves it by that name).
std::string WeightsObject(const FixtureDir& fx) {
  auto rj = fx.RepoJson(fixtures::kModelRepo);
  std::string commit = rj["refs"]["main"];
  for (const auto& f : rj["commits"][commit]["files"])
    if (f["path"] == "model.safetensors") return f["object"];
  return "";
}

// "" when every file of the model equals its fixture object and the marker is there.
std::string SameAsFixture(const FixtureDir& fx, const std::string& root) {
  auto rj = fx.RepoJson(fixtures::kModelRepo);
  std::string commit = rj["refs"]["main"];
  for (const auto& f : rj["commits"][commit]["files"]) {
    const std::string path = f["path"];
    const std::string want = HashFileHex(HashKind::kSha256,
                                         fx.ObjectPath(fixtures::kModelRepo, "main", path));
    const std::string got = HashFileHex(
        HashKind::kSha256, root + "/models/" + fixtures::kModelRepo + "/" + path);
    if (want.empty() || got != want) return "differs: " + path;
  }
  if (!fs::is_regular_file(root + "/Tiny-Model-4bit")) return "no marker";
  return "";
}

uint64_t RangeStart(const std::string& range) {
  return range.rfind("bytes=", 0) == 0 ? std::stoull(range.substr(6)) : 0;
}

// How many bytes "bytes=a-b" asks for (0 for no range).
uint64_t RangeSize(const std::string& range) {
  if (range.rfind("bytes=", 0) != 0) return 0;
  return std::stoull(range.substr(range.find('-') + 1)) - RangeStart(range) + 1;
}

}  // namespace

TEST_CASE("an app's own transport carries a whole pull: no socket, and a cut range resumes "
          "from its next byte") {
  FixtureDir fx(ModelOnly());
  MemoryHub hub(fx.path());
  const std::string object = WeightsObject(fx);
  REQUIRE_FALSE(object.empty());
  hub.DropOnce(object, 200000);  // the first CDN answer for the weights breaks mid-body
  TempDir dir;
  engine::PullOptions po;
  po.root = dir.path() + "/root";
  po.repo = fixtures::kModelRepo;
  engine::Env env = AppEnv(hub);
  auto r = engine::Pull(env, po, nullptr);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(SameAsFixture(fx, po.root) == "");

  bool resumed = false, token_to_hub = false;
  int own = 0, shared = 0;  // ranges on a connection of their own, ranges that may share one
  for (const auto& s : hub.seen()) {
    INFO(s.url << " " << s.range);
    const bool to_hub = s.url.rfind(std::string(MemoryHub::kHubUrl) + "/", 0) == 0;
    if (!to_hub) CHECK(s.authorization.empty());  // the token never goes to the CDN
    // The transport is told how much a range asks for (it sizes libcurl's buffer by it).
    CHECK(s.range_bytes == RangeSize(s.range));
    // A range of 1 MiB or more asks for a connection of its own, never to wait for a shared
    // one; a shorter one (the rest of the cut range, a small file) may share (net/NET.md).
    CHECK(s.own_connection == (s.range_bytes >= (1u << 20)));
    if (s.own_connection) CHECK_FALSE(s.pipewait);
    if (s.range_bytes > 0) ++(s.own_connection ? own : shared);
    if (to_hub && s.authorization == std::string("Bearer ") + kToken) token_to_hub = true;
    // A range starts on a MiB boundary (chunks and tail splits) unless it resumes a cut one.
    if (!to_hub && s.url.find(object) != std::string::npos && RangeStart(s.range) % (1u << 20) != 0) {
      CHECK(RangeStart(s.range) % (1u << 20) == 200000);
      resumed = true;
    }
  }
  CHECK(resumed);
  CHECK(token_to_hub);
  CHECK(own >= 3);     // the weights' 1 MiB ranges
  CHECK(shared >= 1);  // the rest of the cut one

  // Nothing to do: one exchange (the revision), as over HTTP.
  hub.ClearSeen();
  auto again = engine::Pull(env, po, nullptr);
  REQUIRE(again.ok());
  CHECK(hub.seen().size() == 1);
}

TEST_CASE("bad bytes through an app's transport are caught by modelsync's hash: no model, "
          "no marker") {
  FixtureDir fx(ModelOnly());
  MemoryHub hub(fx.path());
  const std::string object = WeightsObject(fx);
  hub.Corrupt(object, (1u << 20) + 7);  // every answer, right headers, one wrong byte
  TempDir dir;
  engine::PullOptions po;
  po.root = dir.path() + "/root";
  po.repo = fixtures::kModelRepo;
  auto r = engine::Pull(AppEnv(hub), po, nullptr);
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kIntegrity);
  CHECK_FALSE(fs::exists(po.root + "/Tiny-Model-4bit"));
  CHECK_FALSE(fs::exists(po.root + "/models/" + fixtures::kModelRepo + "/model.safetensors"));
}

namespace {

// Collects one fetch's bytes; waits for its end.
class Collect : public net::FetchSink {
 public:
  Status OnData(uint64_t offset, const char* data, size_t n) override {
    if (offset != bytes.size()) return Status::Permanent("out of order");
    bytes.append(data, n);
    return Status::Ok();
  }
  void OnDone(Status s) override {
    std::lock_guard<std::mutex> l(mu);
    status = s;
    done = true;
    cv.notify_all();
  }
  Status Wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
    return status;
  }
  std::string bytes;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
};

}  // namespace

TEST_CASE("the rate limit pauses an app's transport; the paused bytes come again, intact") {
  FixtureDir fx(ModelOnly());
  MemoryHub hub(fx.path());
  auto rj = fx.RepoJson(fixtures::kModelRepo);
  const std::string commit = rj["refs"]["main"];
  nlohmann::json weights;
  for (const auto& f : rj["commits"][commit]["files"])
    if (f["path"] == "model.safetensors") weights = f;
  REQUIRE(weights.is_object());

  net::HubOptions ho;
  ho.endpoint = MemoryHub::kHubUrl;
  ho.transport = hub.factory();
  net::Hub client(ho);
  client.SetMaxRate(8u << 20);  // 3 MiB: the bucket empties and refills several times
  net::FetchSpec spec;
  spec.repo = fixtures::kModelRepo;
  spec.commit = commit;
  spec.path = "model.safetensors";
  spec.file_size = weights["size"];
  spec.git_oid = weights["git_oid"];
  spec.lfs_sha256 = weights["lfs_sha256"];
  Collect sink;
  client.Fetch(spec, &sink);
  REQUIRE(sink.Wait().ok());
  CHECK(hub.pauses() > 0);
  CHECK(Sha256Hex(sink.bytes) == spec.lfs_sha256);
}
