// The hub client against the hub emulator, over real loopback sockets
// (tools/EMULATOR.md; tests/support/emulator.h starts it): resolve, fetch, file info,
// offline mode, concurrency, renames, the rate cap. Faults: net_fault_test.cc.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "net_hub_support.h"

namespace modelsync::net {
namespace {

using namespace hubtest;
using nlohmann::json;

TEST_CASE("Resolve: regular and LFS files, commit pinned, matches repo.json") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  json repo = w.fixtures.RepoJson(fixtures::kModelRepo);
  CHECK(r->commit == repo["refs"]["main"].get<std::string>());
  const json& files = repo["commits"][r->commit]["files"];
  REQUIRE(r->files.size() == files.size());
  int lfs = 0;
  for (const auto& f : files) {
    const auto& got = FileOf(*r, f["path"].get<std::string>());
    CHECK(got.size() == f["size"].get<uint64_t>());
    CHECK(got.git_oid() == f["git_oid"].get<std::string>());
    CHECK(got.lfs_sha256() == f.value("lfs_sha256", ""));
    lfs += got.lfs_sha256().empty() ? 0 : 1;
  }
  CHECK(lfs >= 1);
  // A 40-hex ref skips the revision call.
  auto again = hub.Resolve(fixtures::kModelRepo, r->commit);
  REQUIRE(again.ok());
  CHECK(again->files.size() == r->files.size());
}

TEST_CASE("Resolve follows Link pagination across several pages") {
  World& w = W();
  REQUIRE(w.emu.Configure({{"page_size", 7}}).ok());
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kManyFilesRepo, "main");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  json repo = w.fixtures.RepoJson(fixtures::kManyFilesRepo);
  CHECK(r->files.size() == repo["commits"][r->commit]["files"].size());
  CHECK(r->files.size() >= 60);
  CHECK(LogFor(w, "/tree/").size() >= 9);
}

TEST_CASE("Fetch: whole files, LFS via the CDN; the token never reaches the CDN") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  for (const char* path : {"config.json", "model.safetensors"}) {
    TestSink sink;
    hub.Fetch(SpecOf(*r, path), &sink);
    Status s = sink.Wait();
    CHECK_MESSAGE(s.ok(), path << ": " << s.ToString());
    CHECK(sink.contiguous_);
    CHECK(sink.bytes_ == Content(w, fixtures::kModelRepo, path));
  }
  json st = Stats(w);
  CHECK(st["cdn"]["requests"].get<uint64_t>() >= 1);
  CHECK(st["cdn"]["authorization_requests"].get<uint64_t>() == 0);
  CHECK(st["hub"]["authorization_requests"].get<uint64_t>() >= 3);
  // Files are always requested at the commit, never at the branch.
  for (const auto& e : LogFor(w, "/resolve/")) {
    CHECK(e["path"].get<std::string>().find("/resolve/" + r->commit + "/") != std::string::npos);
  }
}

TEST_CASE("Fetch: ranges, and the relative 307 to resolve-cache") {
  World& w = W();
  REQUIRE(w.emu.Configure({{"resolve_cache", true}}).ok());
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  const std::string cfg = Content(w, fixtures::kModelRepo, "config.json");
  TestSink sink(5);
  hub.Fetch(SpecOf(*r, "config.json", ByteRange{5, 20}), &sink);
  REQUIRE(sink.Wait().ok());
  CHECK(sink.bytes_ == cfg.substr(5, 15));
  CHECK(!LogFor(w, "/api/resolve-cache/").empty());
  CHECK(Stats(w)["hub"]["authorization_requests"].get<uint64_t>() >= 2);

  const std::string weights = Content(w, fixtures::kModelRepo, "model.safetensors");
  TestSink tail(weights.size() - 1000);
  hub.Fetch(SpecOf(*r, "model.safetensors", ByteRange{weights.size() - 1000, weights.size()}),
            &tail);
  REQUIRE(tail.Wait().ok());
  CHECK(tail.bytes_ == weights.substr(weights.size() - 1000));
}

TEST_CASE("FileInfo: regular, LFS (stops at the CDN), resolve-cache, missing") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  for (bool cache : {false, true}) {
    REQUIRE(w.emu.Configure({{"resolve_cache", cache}}).ok());
    for (const char* path : {"config.json", "model.safetensors"}) {
      CAPTURE(path);
      auto m = hub.FileInfo(fixtures::kModelRepo, "main", path);
      REQUIRE_MESSAGE(m.ok(), m.status().ToString());
      const auto& f = FileOf(*r, path);
      CHECK(m->commit == r->commit);
      CHECK(m->size == f.size());
      CHECK(m->lfs == !f.lfs_sha256().empty());
      CHECK(m->etag == (f.lfs_sha256().empty() ? f.git_oid() : f.lfs_sha256()));
    }
  }
  // FileInfo HEADs the hub and stops at the CDN redirect. (Counted by method: a GET left in
  // flight by an earlier case's cancelled fetch may still reach the shared emulator's CDN.)
  int cdn_heads = 0;
  for (const auto& e : LogFor(w, ""))
    if (e.value("listener", "") == "cdn" && e.value("method", "") == "HEAD") ++cdn_heads;
  CHECK(cdn_heads == 0);
  auto missing = hub.FileInfo(fixtures::kModelRepo, "main", "nope.json");
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("nope.json") != std::string::npos);
}

TEST_CASE("Offline mode sends nothing") {
  World& w = W();
  HubOptions o = Opts(w);
  o.offline = true;
  Hub hub(o);
  CHECK(hub.Resolve(fixtures::kModelRepo, "main").status().code() == StatusCode::kOffline);
  CHECK(hub.FileInfo(fixtures::kModelRepo, "main", "config.json").status().code() ==
        StatusCode::kOffline);
  TestSink sink;
  hub.Fetch(FetchSpec{fixtures::kModelRepo,
                      std::string(40, 'a'),
                      "config.json",
                      10,
                      std::string(40, 'b'),
                      "",
                      {}},
            &sink);
  CHECK(sink.Wait().code() == StatusCode::kOffline);
  CHECK(hub.counters().requests == 0);
  CHECK(Requests(w, "hub") == 0);
  CHECK(Requests(w, "cdn") == 0);
}

TEST_CASE("Many concurrent fetches, a large file in several ranges") {
  World& w = W();
  HubOptions o = Opts(w);
  o.max_connections = 8;
  Hub hub(o);
  auto many = hub.Resolve(fixtures::kManyFilesRepo, "main");
  auto model = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(many.ok());
  REQUIRE(model.ok());
  std::vector<std::unique_ptr<TestSink>> sinks;
  for (const auto& f : many->files) {
    sinks.push_back(std::make_unique<TestSink>());
    hub.Fetch(SpecOf(*many, f.path()), sinks.back().get());
  }
  const std::string weights = Content(w, fixtures::kModelRepo, "model.safetensors");
  const uint64_t n = weights.size(), quarter = n / 4;
  std::vector<std::unique_ptr<TestSink>> parts;
  for (uint64_t i = 0; i < 4; ++i) {
    ByteRange range{i * quarter, i == 3 ? n : (i + 1) * quarter};
    parts.push_back(std::make_unique<TestSink>(range.begin));
    hub.Fetch(SpecOf(*model, "model.safetensors", range), parts.back().get());
  }
  for (size_t i = 0; i < sinks.size(); ++i) {
    CHECK(sinks[i]->Wait().ok());
    CHECK(sinks[i]->bytes_ == Content(w, fixtures::kManyFilesRepo, many->files[i].path()));
  }
  std::string joined;
  for (auto& p : parts) {
    CHECK(p->Wait().ok());
    joined += p->bytes_;
  }
  CHECK(joined == weights);
  Hub::Counters c = hub.counters();
  CHECK(c.retries == 0);
  // Connections were reused: at most max_connections per host (hub and CDN), far fewer
  // than the requests made.
  CHECK(c.connections <= 16);
  CHECK(c.requests >= 60);
  CHECK(c.connections * 3 < c.requests);
}

TEST_CASE("A branch moved after Resolve does not change what is fetched") {
  World& w = W();
  Hub hub(Opts(w));
  auto v2 = hub.Resolve(fixtures::kVersionsRepo, "main");
  auto v1 = hub.Resolve(fixtures::kVersionsRepo, "v1");
  REQUIRE(v2.ok());
  REQUIRE(v1.ok());
  REQUIRE(v1->commit != v2->commit);
  REQUIRE(w.emu.MoveRef(fixtures::kVersionsRepo, "main", v1->commit).ok());
  TestSink sink;
  hub.Fetch(SpecOf(*v2, "README.md"), &sink);
  REQUIRE(sink.Wait().ok());
  auto readme = ReadFile(w.fixtures.ObjectPath(fixtures::kVersionsRepo, v2->commit, "README.md"));
  REQUIRE(readme.ok());
  CHECK(sink.bytes_ == *readme);
  auto moved = hub.Resolve(fixtures::kVersionsRepo, "main");
  REQUIRE(moved.ok());
  CHECK(moved->commit == v1->commit);
}

TEST_CASE("Renamed repos: relative 307s are followed with the token; loops are cut") {
  World& w = W();
  REQUIRE(w.emu.Configure({{"renames", {{"old-org/old-name", fixtures::kModelRepo}}}}).ok());
  Hub hub(Opts(w));
  auto r = hub.Resolve("old-org/old-name", "main");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  TestSink sink;
  hub.Fetch(SpecOf(*r, "model.safetensors"), &sink);
  REQUIRE(sink.Wait().ok());
  CHECK(sink.bytes_ == Content(w, fixtures::kModelRepo, "model.safetensors"));
  CHECK(Stats(w)["cdn"]["authorization_requests"].get<uint64_t>() == 0);

  REQUIRE(w.emu.Configure({{"renames", {{"loop/a", "loop/b"}, {"loop/b", "loop/a"}}}}).ok());
  Status s = hub.Resolve("loop/a", "main").status();
  CHECK_MESSAGE(s.code() == StatusCode::kPermanent, s.ToString());
  CHECK(s.message().find("redirects") != std::string::npos);
}

TEST_CASE("SetMaxRate caps the total rate") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  hub.SetMaxRate(2 << 20);  // 2 MiB/s
  const uint64_t size = FileOf(*r, "model.safetensors").size();
  TestSink sink;
  auto t0 = std::chrono::steady_clock::now();
  hub.Fetch(SpecOf(*r, "model.safetensors"), &sink);
  REQUIRE(sink.Wait().ok());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(secs >= 0.7 * static_cast<double>(size) / (2 << 20));
  hub.SetMaxRate(0);
  TestSink fast;
  t0 = std::chrono::steady_clock::now();
  hub.Fetch(SpecOf(*r, "model.safetensors"), &fast);
  REQUIRE(fast.Wait().ok());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(400));
}
// libcurl parks a PIPEWAIT transfer while the connection it waits for is being set up, and
// on an HTTP/1.1 server wakes it only when another transfer ends: eight ranges of a CDN
// paced per connection ran one at a time (a 6 MB/s cap delivered 1 MB/s). PIPEWAIT is now
// asked only of an origin that answered over HTTP/2 (net/NET.md "Connections").
TEST_CASE("ranges of an HTTP/1.1 CDN run at once, capped or not: none waits for another") {
  World& w = W();
  // 32 kB/s per connection: a 128 KiB range takes 4 s, so a range that waits for another's
  // connection gets nothing for seconds.
  REQUIRE(w.emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"},
                            {"throttle_bps", 32000}}})
              .ok());
  for (uint64_t cap : {uint64_t{0}, uint64_t{200000}}) {
    CAPTURE(cap);
    Hub hub(Opts(w));
    auto r = hub.Resolve(fixtures::kModelRepo, "main");
    REQUIRE(r.ok());
    hub.SetMaxRate(cap);  // 8 x 32 kB/s = 256 kB/s against a cap of 200 kB/s: it pauses
    const uint64_t size = FileOf(*r, "model.safetensors").size();
    const uint64_t part = size / 8;
    std::vector<std::unique_ptr<TestSink>> sinks;
    for (uint64_t i = 0; i < 8; ++i) {
      sinks.push_back(std::make_unique<TestSink>(i * part));
      hub.Fetch(SpecOf(*r, "model.safetensors", {i * part, (i + 1) * part}), sinks.back().get());
    }
    auto all_moving = [&] {
      for (auto& s : sinks)
        if (s->size() == 0) return false;
      return true;
    };
    auto t0 = std::chrono::steady_clock::now();
    while (!all_moving() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    int moving = 0;
    for (auto& s : sinks) moving += s->size() > 0;
    CHECK(moving == 8);
    hub.Stop();
    for (auto& s : sinks) (void)s->Wait();
  }
}

TEST_CASE("A file's ranges go to its signed CDN link: one hub round trip per file; a refused "
          "link goes back to the hub once") {
  World& w = W();
  Hub hub(Opts(w));
  auto model = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(model.ok());
  const std::string weights = Content(w, fixtures::kModelRepo, "model.safetensors");
  const uint64_t n = weights.size(), part = n / 6;
  auto fetch_all = [&]() {  // six ranges, one after the other
    std::string joined;
    for (uint64_t i = 0; i < 6; ++i) {
      ByteRange range{i * part, i == 5 ? n : (i + 1) * part};
      TestSink sink(range.begin);
      hub.Fetch(SpecOf(*model, "model.safetensors", range), &sink);
      REQUIRE(sink.Wait().ok());
      joined += sink.bytes_;
    }
    return joined;
  };
  auto hub_gets = [&]() {
    size_t k = 0;
    for (const auto& e : LogFor(w, "model.safetensors"))
      if (e["listener"] == "hub" && e["method"] == "GET") ++k;
    return k;
  };
  CHECK(fetch_all() == weights);
  CHECK(hub_gets() == 1);  // the 302 once; five ranges straight to the CDN
  CHECK(Requests(w, "cdn") == 6);

  // The CDN refuses the kept link (an expired or revoked signature): the range goes back to
  // the hub, which signs a new one; the fetch still succeeds and nothing is delivered twice.
  REQUIRE(w.emu.Reset().ok());
  REQUIRE(w.emu.SetFaults({{{"match", "model.safetensors"}, {"listener", "cdn"}, {"times", 1},
                            {"status_sequence", {403}}}})
              .ok());
  CHECK(fetch_all() == weights);
  CHECK(hub_gets() == 1);
  CHECK(Requests(w, "cdn") == 7);
}

}  // namespace
}  // namespace modelsync::net
