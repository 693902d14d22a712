// The hub client against the hub emulator, over real loopback sockets
// (tools/EMULATOR.md; tests/support/emulator.h starts it).
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "net/hub.h"
#include "support/emulator.h"

namespace modelsync::net {
namespace {

using nlohmann::json;
using testing::EmulatorProcess;
using testing::FixtureDir;

constexpr char kToken[] = "hf_net_test_secret_token";

// One fixture directory and one emulator for the whole binary; each test resets it.
struct World {
  World()
      : fixtures(Options()),
        emu(EmulatorProcess::Options{fixtures.path(), kToken, 1000, false, {}}) {
    Status s = emu.Start();
    if (!s.ok()) FAIL("cannot start the emulator: " << s.ToString());
  }
  static fixtures::FixtureOptions Options() {
    fixtures::FixtureOptions o;
    o.weights_bytes = 1 << 20;
    o.small_files = 60;
    o.only = {"model", "many-files", "gated", "private", "hostile", "versions"};
    return o;
  }
  FixtureDir fixtures;
  EmulatorProcess emu;
};

World& W() {
  static World w;
  // A request an earlier case left in flight (a cancelled fetch, a destroyed Hub) may still
  // be on its way to the emulator: let it land, then start from clean counters.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(w.emu.Reset().ok());
  return w;
}

HubOptions Opts(const World& w, bool token = true) {
  HubOptions o;
  o.endpoint = w.emu.hub_url();
  if (token) o.token = kToken;
  o.backoff_base = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(50);
  o.stall_timeout = std::chrono::milliseconds(1000);
  o.connect_timeout = std::chrono::milliseconds(2000);
  return o;
}

// Collects a fetch's bytes; checks offsets are contiguous.
class TestSink : public FetchSink {
 public:
  explicit TestSink(uint64_t begin = 0) : next_(begin) {}
  Status OnData(uint64_t offset, const char* data, size_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    if (offset != next_) contiguous_ = false;
    next_ = offset + n;
    bytes_.append(data, n);
    return fail_after_ >= 0 && bytes_.size() > static_cast<size_t>(fail_after_)
               ? Status::NoSpace("sink full")
               : Status::Ok();
  }
  void OnDone(Status s) override {
    std::lock_guard<std::mutex> l(mu_);
    ++done_count_;
    status_ = std::move(s);
    cv_.notify_all();
  }
  Status Wait(std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, limit, [&] { return done_count_ > 0; })) {
      return Status::Transient("test timed out waiting for OnDone");
    }
    return status_;
  }
  bool done() {
    std::lock_guard<std::mutex> l(mu_);
    return done_count_ > 0;
  }
  size_t size() {
    std::lock_guard<std::mutex> l(mu_);
    return bytes_.size();
  }
  std::string bytes_;
  bool contiguous_ = true;
  int done_count_ = 0;
  int64_t fail_after_ = -1;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_;
  Status status_;
};

const v1::FileEntry& FileOf(const ResolvedRevision& r, const std::string& path) {
  for (const auto& f : r.files) {
    if (f.path() == path) return f;
  }
  FAIL("no " << path << " in " << r.repo);
  static v1::FileEntry none;
  return none;
}

FetchSpec SpecOf(const ResolvedRevision& r, const std::string& path, ByteRange range = {}) {
  const auto& f = FileOf(r, path);
  return FetchSpec{r.repo, r.commit, path, f.size(), f.git_oid(), f.lfs_sha256(), range};
}

std::string Content(const World& w, const std::string& repo, const std::string& path) {
  auto data = ReadFile(w.fixtures.ObjectPath(repo, "main", path));
  REQUIRE(data.ok());
  return *data;
}

json Stats(World& w) {
  auto s = w.emu.Stats();
  REQUIRE(s.ok());
  return *s;
}

uint64_t Requests(World& w, const char* listener) {
  return Stats(w)[listener].value("requests", uint64_t{0});
}

// Log entries for paths containing `part`.
std::vector<json> LogFor(World& w, const std::string& part) {
  auto log = w.emu.Log();
  REQUIRE(log.ok());
  std::vector<json> out;
  const json& entries = log->is_array() ? *log : (*log)["entries"];
  for (const auto& e : entries) {
    if (e.value("path", "").find(part) != std::string::npos) out.push_back(e);
  }
  return out;
}

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

TEST_CASE("A connection dropped mid-body resumes with a Range from the next byte") {
  World& w = W();
  REQUIRE(w.emu
              .SetFaults({{{"match", "model.safetensors"},
                           {"listener", "cdn"},
                           {"drop_after_bytes", 300000},
                           {"times", 1}}})
              .ok());
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  TestSink sink;
  hub.Fetch(SpecOf(*r, "model.safetensors"), &sink);
  Status s = sink.Wait();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(sink.contiguous_);
  CHECK(sink.bytes_ == Content(w, fixtures::kModelRepo, "model.safetensors"));
  auto cdn = LogFor(w, "model.safetensors");
  std::vector<std::string> ranges;
  for (const auto& e : cdn) {
    if (e["listener"] == "cdn") ranges.push_back(e["range"].get<std::string>());
  }
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].rfind("bytes=0-", 0) == 0);
  CHECK(ranges[1].rfind("bytes=300000-", 0) == 0);
}

TEST_CASE("A stalled transfer is aborted and resumed") {
  World& w = W();
  REQUIRE(w.emu
              .SetFaults({{{"match", "model.safetensors"},
                           {"listener", "cdn"},
                           {"stall_after_bytes", 100000},
                           {"stall_ms", 0},
                           {"times", 1}}})
              .ok());
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  TestSink sink;
  auto t0 = std::chrono::steady_clock::now();
  hub.Fetch(SpecOf(*r, "model.safetensors"), &sink);
  Status s = sink.Wait();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(900));
  CHECK(sink.bytes_ == Content(w, fixtures::kModelRepo, "model.safetensors"));
  CHECK(hub.counters().retries >= 1);
}

TEST_CASE("Ignored Range and wrong Content-Range: nothing delivered, retried, then kTransient") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  std::string whole = Content(w, fixtures::kModelRepo, "model.safetensors");
  for (const char* fault : {"ignore_range", "wrong_content_range"}) {
    CAPTURE(fault);
    // Always: every attempt is refused, nothing is delivered, the error names the cause.
    REQUIRE(w.emu.SetFaults({{{"match", "model.safetensors"}, {fault, true}}}).ok());
    TestSink sink(1000);
    hub.Fetch(SpecOf(*r, "model.safetensors", ByteRange{1000, 5000}), &sink);
    Status s = sink.Wait();
    CHECK(s.code() == StatusCode::kTransient);
    CHECK(s.message().find("Range") != std::string::npos);
    CHECK(sink.size() == 0);
    // Also for a regular file served by the hub itself.
    REQUIRE(w.emu.SetFaults({{{"match", "config.json"}, {fault, true}}}).ok());
    TestSink small(1);
    hub.Fetch(SpecOf(*r, "config.json", ByteRange{1, 10}), &small);
    CHECK(small.Wait().code() == StatusCode::kTransient);
    CHECK(small.size() == 0);
    // Once (an edge answering from a whole-file cache entry): the retry gets the range.
    REQUIRE(w.emu.SetFaults({{{"match", "model.safetensors"}, {fault, true}, {"times", 1}}}).ok());
    TestSink once(1000);
    hub.Fetch(SpecOf(*r, "model.safetensors", ByteRange{1000, 5000}), &once);
    CHECK(once.Wait().ok());
    CHECK(once.bytes_ == whole.substr(1000, 4000));
  }
}

TEST_CASE("An identity that differs from the listing is kIntegrity, nothing delivered") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  FetchSpec cfg = SpecOf(*r, "config.json");
  cfg.git_oid[0] = cfg.git_oid[0] == 'a' ? 'b' : 'a';  // a flipped ETag
  FetchSpec lfs = SpecOf(*r, "model.safetensors");
  lfs.lfs_sha256[5] = lfs.lfs_sha256[5] == '0' ? '1' : '0';
  FetchSpec size = SpecOf(*r, "model.safetensors");
  size.file_size += 1;
  for (const FetchSpec& spec : {cfg, lfs, size}) {
    TestSink sink;
    hub.Fetch(spec, &sink);
    Status s = sink.Wait();
    CHECK_MESSAGE(s.code() == StatusCode::kIntegrity, s.ToString());
    CHECK(sink.size() == 0);
  }
  CHECK(Requests(w, "cdn") == 0);  // the hub's 302 already disagreed
}

TEST_CASE("The emulator's bad_etag and wrong total faults are kIntegrity, nothing delivered") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  for (const char* path : {"config.json", "model.safetensors"}) {
    CAPTURE(path);
    REQUIRE(w.emu.SetFaults({{{"match", path}, {"bad_etag", true}}}).ok());
    TestSink sink;
    hub.Fetch(SpecOf(*r, path), &sink);
    Status s = sink.Wait();
    CHECK_MESSAGE(s.code() == StatusCode::kIntegrity, s.ToString());
    CHECK(sink.size() == 0);
  }
  REQUIRE(w.emu
              .SetFaults({{{"match", "model.safetensors"},
                           {"listener", "cdn"},
                           {"wrong_content_range", "total"}}})
              .ok());
  TestSink total(0);
  hub.Fetch(SpecOf(*r, "model.safetensors", ByteRange{0, 100}), &total);
  CHECK(total.Wait().code() == StatusCode::kIntegrity);
  CHECK(total.size() == 0);
}

TEST_CASE("503s are retried with backoff; 429 waits Retry-After on the clock") {
  World& w = W();
  REQUIRE(w.emu.SetFaults({{{"match", "config.json"}, {"status_sequence", {503, 503}}}}).ok());
  FakeClock clock;
  HubOptions o = Opts(w);
  o.clock = &clock;
  o.backoff_base = std::chrono::milliseconds(1000);
  o.backoff_max = std::chrono::milliseconds(4000);
  Hub hub(o);
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  {
    TestSink sink;
    hub.Fetch(SpecOf(*r, "config.json"), &sink);
    // Backoff waits on the fake clock: nothing moves until it does.
    for (int i = 0; i < 400 && !sink.done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      clock.Advance(std::chrono::milliseconds(100));
    }
    REQUIRE(sink.Wait().ok());
    CHECK(sink.bytes_ == Content(w, fixtures::kModelRepo, "config.json"));
    CHECK(LogFor(w, "config.json").size() == 3);
    CHECK(hub.counters().retries == 2);
  }
  REQUIRE(w.emu.Reset().ok());
  REQUIRE(
      w.emu.SetFaults({{{"match", "config.json"}, {"status_sequence", {429}}, {"retry_after", 30}}})
          .ok());
  TestSink sink;
  hub.Fetch(SpecOf(*r, "config.json"), &sink);
  auto wait_requests = [&](size_t n) {
    for (int i = 0; i < 1000 && LogFor(w, "config.json").size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return LogFor(w, "config.json").size();
  };
  REQUIRE(wait_requests(1) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  clock.Advance(std::chrono::milliseconds(29900));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(LogFor(w, "config.json").size() == 1);  // still waiting: 29.9 s < Retry-After
  CHECK(!sink.done());
  clock.Advance(std::chrono::milliseconds(200));
  REQUIRE(sink.Wait().ok());
  CHECK(wait_requests(2) == 2);
}

TEST_CASE("Errors map to codes and messages that say what to do, never the token") {
  World& w = W();
  Hub anon(Opts(w, /*token=*/false));
  Hub authed(Opts(w));
  std::vector<Status> seen;
  auto check = [&](const Status& s, StatusCode code, const std::string& text) {
    CHECK_MESSAGE(s.code() == code, s.ToString());
    CHECK_MESSAGE(s.message().find(text) != std::string::npos, s.ToString());
    seen.push_back(s);
  };
  check(anon.Resolve("nobody/nothing", "main").status(), StatusCode::kNotFound,
        "repository nobody/nothing not found or private: check the name, or log in by setting "
        "HF_TOKEN");
  check(anon.Resolve(fixtures::kPrivateRepo, "main").status(), StatusCode::kNotFound,
        "not found or private");
  REQUIRE(authed.Resolve(fixtures::kPrivateRepo, "main").ok());
  check(authed.Resolve(fixtures::kModelRepo, "no-such-branch").status(), StatusCode::kNotFound,
        "revision 'no-such-branch' not found in " + std::string(fixtures::kModelRepo));

  auto gated = anon.Resolve(fixtures::kGatedRepo, "main");
  REQUIRE(gated.ok());
  TestSink g;
  anon.Fetch(SpecOf(*gated, "config.json"), &g);
  check(g.Wait(), StatusCode::kUnauthorized,
        std::string(fixtures::kGatedRepo) +
            " is gated: request access on the hub, then set HF_TOKEN");
  Hub other([&] {
    HubOptions o = Opts(w);
    o.token = "hf_someone_else";
    return o;
  }());
  TestSink g2;
  other.Fetch(SpecOf(*gated, "config.json"), &g2);
  check(g2.Wait(), StatusCode::kUnauthorized, "is gated");
  TestSink g3;
  authed.Fetch(SpecOf(*gated, "config.json"), &g3);
  CHECK(g3.Wait().ok());

  auto model = authed.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(model.ok());
  FetchSpec missing = SpecOf(*model, "config.json");
  missing.path = "not-there.json";
  TestSink m;
  authed.Fetch(missing, &m);
  check(m.Wait(), StatusCode::kNotFound, "file 'not-there.json' not found in");

  REQUIRE(w.emu.SetFaults({{{"match", "config.json"}, {"status_sequence", {429, 429, 429}}}}).ok());
  HubOptions few = Opts(w);
  few.max_attempts = 3;
  Hub limited(few);
  TestSink rl;
  limited.Fetch(SpecOf(*model, "config.json"), &rl);
  check(rl.Wait(), StatusCode::kTransient, "rate limited by the hub (429)");

  HubOptions dead = Opts(w);
  dead.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  dead.max_attempts = 2;
  Hub unreachable(dead);
  check(unreachable.Resolve(fixtures::kModelRepo, "main").status(), StatusCode::kTransient,
        "network unreachable");

  HubOptions tls = Opts(w);
  tls.endpoint = "https://127.0.0.1:" + std::to_string(w.emu.hub_port());  // plain HTTP there
  tls.max_attempts = 1;
  Hub tls_hub(tls);
  Status t = tls_hub.Resolve(fixtures::kModelRepo, "main").status();
  CHECK_MESSAGE(t.message().find("TLS") != std::string::npos, t.ToString());
  seen.push_back(t);

  check(authed.Resolve(fixtures::kHostileRepo, "main").status(), StatusCode::kPermanent,
        "unsafe path");
  for (const Status& s : seen) CHECK(s.message().find(kToken) == std::string::npos);
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

TEST_CASE("Cancel, a failing sink, and ~Hub end fetches exactly once") {
  World& w = W();
  REQUIRE(w.emu
              .SetFaults(
                  {{{"match", "model.safetensors"}, {"listener", "cdn"}, {"throttle_bps", 200000}}})
              .ok());
  auto hub = std::make_unique<Hub>(Opts(w));
  auto r = hub->Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  TestSink cancelled;
  uint64_t id = hub->Fetch(SpecOf(*r, "model.safetensors"), &cancelled);
  for (int i = 0; i < 400 && cancelled.size() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  hub->Cancel(id);
  CHECK(cancelled.Wait(std::chrono::seconds(5)).code() == StatusCode::kCancelled);

  TestSink full;
  full.fail_after_ = 1;
  hub->Fetch(SpecOf(*r, "model.safetensors"), &full);
  CHECK(full.Wait().code() == StatusCode::kNoSpace);

  TestSink pending;
  hub->Fetch(SpecOf(*r, "model.safetensors"), &pending);
  hub.reset();
  CHECK(pending.Wait(std::chrono::seconds(5)).code() == StatusCode::kCancelled);
  CHECK(cancelled.done_count_ == 1);
  CHECK(pending.done_count_ == 1);
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

TEST_CASE("A gzip answer to a range request is never delivered") {
  World& w = W();
  REQUIRE(w.emu.SetFaults({{{"match", "config.json"}, {"gzip", true}}}).ok());
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  TestSink sink;
  hub.Fetch(SpecOf(*r, "config.json"), &sink);
  // Refused on every attempt (a 200 to a range request), then kTransient naming Range.
  Status s = sink.Wait();
  CHECK(s.code() == StatusCode::kTransient);
  CHECK(s.message().find("ignores Range") != std::string::npos);
  CHECK(sink.size() == 0);
}

TEST_CASE("An outage is retried until the hub is back") {
  World& w = W();
  FakeClock clock;
  HubOptions o = Opts(w);
  o.clock = &clock;
  o.backoff_base = std::chrono::milliseconds(2000);
  o.backoff_max = std::chrono::milliseconds(2000);
  o.max_attempts = 20;
  Hub hub(o);
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  w.emu.Stop();
  TestSink sink;
  hub.Fetch(SpecOf(*r, "config.json"), &sink);
  for (int i = 0; i < 50 && hub.counters().retries < 2; ++i) {
    clock.Advance(std::chrono::milliseconds(2100));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(hub.counters().retries >= 2);
  CHECK(!sink.done());
  REQUIRE(w.emu.Start().ok());
  for (int i = 0; i < 200 && !sink.done(); ++i) {
    clock.Advance(std::chrono::milliseconds(2100));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Status s = sink.Wait();
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(sink.bytes_ == Content(w, fixtures::kModelRepo, "config.json"));
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

}  // namespace
}  // namespace modelsync::net
