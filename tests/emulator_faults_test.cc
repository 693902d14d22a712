// hub_emulator fault injection over real sockets: each fault type, matching, counting.
#include <doctest/doctest.h>

#include <chrono>

#include "base/fs.h"
#include "base/hash.h"
#include "emulator_env.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;

namespace {

struct Target {
  std::string cdn_url;  // signed CDN URL of model.safetensors
  std::string content;
};

Target ModelOnCdn(EmulatorEnv& env) {
  const std::string repo = fixtures::kModelRepo;
  Target t;
  auto c = ReadFile(env.fixtures.ObjectPath(repo, "main", "model.safetensors"));
  REQUIRE(c.ok());
  t.content = *c;
  t.cdn_url = Http(env.Hub("/" + repo + "/resolve/main/model.safetensors")).Header("location");
  REQUIRE(!t.cdn_url.empty());
  return t;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

TEST_CASE("fault: drop the connection after N body bytes, K times, per path") {
  auto& env = EmulatorEnv::Get();
  Target t = ModelOnCdn(env);
  REQUIRE(env.emulator
              .SetFaults({{{"match", "model.safetensors"},
                           {"listener", "cdn"},
                           {"drop_after_bytes", 1000},
                           {"times", 2}}})
              .ok());
  for (int i = 0; i < 2; ++i) {
    auto r = Http(t.cdn_url);
    CHECK(r.curl_code != 0);  // CURLE_PARTIAL_FILE
    CHECK(r.body == t.content.substr(0, 1000));
  }
  auto r = Http(t.cdn_url);
  CHECK(r.curl_code == 0);
  CHECK(r.body == t.content);
  auto log = env.emulator.Log();
  REQUIRE(log.ok());
  int dropped = 0;
  for (const auto& e : *log) dropped += e["dropped"].get<bool>() ? 1 : 0;
  CHECK(dropped == 2);
  CHECK((*log)[1]["body_bytes"] == 1000);  // [0] is the hub 302

  // Once per path: each distinct path drops once.
  REQUIRE(env.emulator
              .SetFaults({{{"match", "*.json"},
                           {"listener", "hub"},
                           {"drop_after_bytes", 5},
                           {"times", 1},
                           {"per_path", true}}})
              .ok());
  std::string base = env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/");
  CHECK(Http(base + "config.json").curl_code != 0);
  CHECK(Http(base + "config.json").curl_code == 0);
  CHECK(Http(base + "tokenizer.json").curl_code != 0);
  CHECK(Http(base + "tokenizer.json").curl_code == 0);
  CHECK(Http(base + "README.md").curl_code == 0);  // not matched
}

TEST_CASE("fault: scripted status sequence with Retry-After, then normal service") {
  auto& env = EmulatorEnv::Get();
  std::string url = env.Hub(std::string("/api/models/") + fixtures::kModelRepo + "/revision/main");
  REQUIRE(env.emulator
              .SetFaults({{{"match", "/revision/"},
                           {"status_sequence", {503, 429, 200, 503}},
                           {"retry_after", 3}}})
              .ok());
  auto r = Http(url);
  CHECK(r.status == 503);
  CHECK(r.Header("retry-after") == "3");
  CHECK(json::parse(r.body).contains("error"));
  r = Http(url);
  CHECK(r.status == 429);
  CHECK(r.Header("retry-after") == "3");
  CHECK(Http(url).status == 200);
  CHECK(Http(url).status == 503);
  CHECK(Http(url).status == 200);  // sequence exhausted
  CHECK(Http(url).status == 200);
  // Method filter: a HEAD-only rule leaves GETs alone.
  REQUIRE(
      env.emulator
          .SetFaults({{{"match", "config.json"}, {"method", "HEAD"}, {"status_sequence", {500}}}})
          .ok());
  std::string file = env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/config.json");
  CHECK(Http(file).status == 200);
  CHECK(Http(file, HttpOptions().Method("HEAD")).status == 500);
}

TEST_CASE("fault: ignore Range, wrong Content-Range, flipped byte") {
  auto& env = EmulatorEnv::Get();
  Target t = ModelOnCdn(env);
  REQUIRE(env.emulator
              .SetFaults({{{"match", "model.safetensors"}, {"ignore_range", true}, {"times", 1}}})
              .ok());
  auto r = Http(t.cdn_url, HttpOptions().Header("Range: bytes=100-"));
  CHECK(r.status == 200);
  CHECK(r.Header("content-range").empty());
  CHECK(r.body == t.content);

  REQUIRE(env.emulator.SetFaults({{{"match", "model.safetensors"}, {"wrong_content_range", true}}})
              .ok());
  r = Http(t.cdn_url, HttpOptions().Header("Range: bytes=100-199"));
  CHECK(r.status == 206);
  CHECK(r.Header("content-range") == "bytes 101-200/" + std::to_string(t.content.size()));

  REQUIRE(
      env.emulator.SetFaults({{{"match", "model.safetensors"}, {"wrong_content_range", "total"}}})
          .ok());
  r = Http(t.cdn_url, HttpOptions().Header("Range: bytes=100-199"));
  CHECK(r.Header("content-range") == "bytes 100-199/" + std::to_string(t.content.size() + 1));

  REQUIRE(env.emulator.SetFaults({{{"match", "model.safetensors"}, {"flip_byte_at", 5000}}}).ok());
  r = Http(t.cdn_url);
  REQUIRE(r.body.size() == t.content.size());
  CHECK(r.body != t.content);
  CHECK(static_cast<unsigned char>(r.body[5000] ^ t.content[5000]) == 0xff);
  CHECK(r.body.substr(0, 5000) == t.content.substr(0, 5000));
  CHECK(r.body.substr(5001) == t.content.substr(5001));
  r = Http(t.cdn_url,
           HttpOptions().Header("Range: bytes=4990-5009"));  // flip lands inside the range
  CHECK(static_cast<unsigned char>(r.body[10] ^ t.content[5000]) == 0xff);
}

TEST_CASE("fault: throttle, latency, stall for a while, stall forever") {
  auto& env = EmulatorEnv::Get();
  Target t = ModelOnCdn(env);
  REQUIRE(
      env.emulator.SetFaults({{{"match", "model.safetensors"}, {"throttle_bps", 400000}}}).ok());
  auto start = std::chrono::steady_clock::now();
  auto r = Http(t.cdn_url, HttpOptions().Header("Range: bytes=0-199999"));  // 200 kB at 400 kB/s
  double s = Seconds(start);
  CHECK(r.body == t.content.substr(0, 200000));
  CHECK(s >= 0.45);
  CHECK(s < 3.0);

  std::string file = env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/config.json");
  REQUIRE(env.emulator.SetFaults({{{"match", "config.json"}, {"latency_ms", 300}}}).ok());
  start = std::chrono::steady_clock::now();
  CHECK(Http(file).status == 200);
  CHECK(Seconds(start) >= 0.29);

  REQUIRE(
      env.emulator
          .SetFaults(
              {{{"match", "model.safetensors"}, {"stall_after_bytes", 1000}, {"stall_ms", 400}}})
          .ok());
  start = std::chrono::steady_clock::now();
  r = Http(t.cdn_url);
  CHECK(r.body == t.content);
  CHECK(Seconds(start) >= 0.39);

  REQUIRE(
      env.emulator.SetFaults({{{"match", "model.safetensors"}, {"stall_after_bytes", 1000}}}).ok());
  r = Http(t.cdn_url, HttpOptions().Timeout(500));
  CHECK(r.curl_code == 28);  // CURLE_OPERATION_TIMEDOUT
  CHECK(r.body == t.content.substr(0, 1000));
}

TEST_CASE("fault: listener filter, glob match, bad rules rejected, reset clears") {
  auto& env = EmulatorEnv::Get();
  std::string file = env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/config.json");
  REQUIRE(
      env.emulator.SetFaults({{{"match", "*"}, {"listener", "cdn"}, {"status_sequence", {503}}}})
          .ok());
  CHECK(Http(file).status == 200);  // hub untouched
  REQUIRE(env.emulator
              .SetFaults({{{"match", "/mlx-community/*/resolve/*/config.json"},
                           {"status_sequence", {502}}}})
              .ok());
  CHECK(Http(file).status == 502);
  CHECK(!env.emulator.SetFaults({{{"match", "x"}, {"no_such_key", 1}}}).ok());
  CHECK(!env.emulator.SetFaults({{{"match", "x"}, {"listener", "moon"}}}).ok());
  REQUIRE(env.emulator.SetFaults({{{"match", "config.json"}, {"status_sequence", {500}}}}).ok());
  REQUIRE(env.emulator.AddFaults({{{"match", "config.json"}, {"latency_ms", 1}}}).ok());
  REQUIRE(env.emulator.Reset().ok());
  CHECK(Http(file).status == 200);
  auto stats = env.emulator.Stats();
  REQUIRE(stats.ok());
  CHECK((*stats)["hub"]["requests"] == 1);  // control calls are not counted
  CHECK((*stats)["paths"].contains("/" + std::string(fixtures::kModelRepo) +
                                   "/resolve/main/config.json"));
}

TEST_CASE("fault: gzip without Content-Length, Range ignored") {
  auto& env = EmulatorEnv::Get();
  std::string file =
      env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/tokenizer.json");
  REQUIRE(env.emulator.SetFaults({{{"match", "tokenizer.json"}, {"gzip", true}}}).ok());
  auto r = Http(file, HttpOptions().Header("Range: bytes=0-9"));
  CHECK(r.status == 200);
  CHECK(r.Header("content-encoding") == "gzip");
  CHECK(r.Header("content-length").empty());
  CHECK(r.Header("transfer-encoding") == "chunked");
  REQUIRE(r.body.size() > 2);
  CHECK(static_cast<unsigned char>(r.body[0]) == 0x1f);
  CHECK(static_cast<unsigned char>(r.body[1]) == 0x8b);
}

TEST_CASE("fault: bad ETag / X-Linked-Etag on the hub's answer") {
  auto& env = EmulatorEnv::Get();
  std::string base = env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/");
  auto good_lfs = Http(base + "model.safetensors", HttpOptions().Method("HEAD"));
  auto good = Http(base + "config.json", HttpOptions().Method("HEAD"));
  REQUIRE(env.emulator.SetFaults({{{"match", "/resolve/"}, {"bad_etag", true}}}).ok());
  auto bad_lfs = Http(base + "model.safetensors", HttpOptions().Method("HEAD"));
  auto bad = Http(base + "config.json", HttpOptions().Method("HEAD"));
  CHECK(bad_lfs.Header("x-linked-etag").size() == good_lfs.Header("x-linked-etag").size());
  CHECK(bad_lfs.Header("x-linked-etag") != good_lfs.Header("x-linked-etag"));
  CHECK(bad.Header("etag") != good.Header("etag"));
  CHECK(bad.Header("x-repo-commit") == good.Header("x-repo-commit"));
  REQUIRE(env.emulator.SetFaults({{{"match", "/resolve/"}, {"strip_etag", true}}}).ok());
  auto stripped_lfs = Http(base + "model.safetensors", HttpOptions().Method("HEAD"));
  auto stripped = Http(base + "config.json", HttpOptions().Method("HEAD"));
  CHECK(!good_lfs.Header("x-linked-etag").empty());
  CHECK(stripped_lfs.Header("x-linked-etag").empty());
  CHECK(stripped_lfs.Header("etag").empty());
  CHECK(stripped.Header("etag").empty());
  CHECK(stripped.Header("x-repo-commit") == good.Header("x-repo-commit"));
}
