// The hub client under faults from the emulator: drops, stalls, refused ranges, identity
// mismatches, 5xx/429, error mapping, cancellation, gzip, an outage, Stop().
#include <doctest/doctest.h>

#include "net_hub_support.h"

namespace modelsync::net {
namespace {

using namespace hubtest;
using nlohmann::json;

TEST_CASE("A connection dropped mid-body resumes with a Range from the next byte") {
  // Through a sink that takes pieces (OnData) and one that lends memory to receive them in
  // place (the range reader's path: net/range_reader.h).
  for (const bool lend : {false, true}) {
    CAPTURE(lend);
    ModelHub m;
    REQUIRE(m.w.emu
                .SetFaults({{{"match", "model.safetensors"},
                             {"listener", "cdn"},
                             {"drop_after_bytes", 300000},
                             {"times", 1}}})
                .ok());
    TestSink sink(0, lend);
    Status s = m.Fetch(sink);
    REQUIRE_MESSAGE(s.ok(), s.ToString());
    CHECK(sink.contiguous_);
    CHECK(sink.contract_kept_);
    CHECK((sink.placed_ > 0) == lend);
    CHECK(sink.bytes_ == m.whole);
    std::vector<std::string> ranges;
    for (const auto& e : LogFor(m.w, "model.safetensors")) {
      if (e["listener"] == "cdn") ranges.push_back(e["range"].get<std::string>());
    }
    REQUIRE(ranges.size() == 2);
    CHECK(ranges[0].rfind("bytes=0-", 0) == 0);
    CHECK(ranges[1].rfind("bytes=300000-", 0) == 0);
  }
}

TEST_CASE("A stalled transfer is aborted and resumed") {
  for (const bool lend : {false, true}) {  // as above
    CAPTURE(lend);
    ModelHub m;
    REQUIRE(m.w.emu
                .SetFaults({{{"match", "model.safetensors"},
                             {"listener", "cdn"},
                             {"stall_after_bytes", 100000},
                             {"stall_ms", 0},
                             {"times", 1}}})
                .ok());
    TestSink sink(0, lend);
    auto t0 = std::chrono::steady_clock::now();
    Status s = m.Fetch(sink);
    REQUIRE_MESSAGE(s.ok(), s.ToString());
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(900));
    CHECK(sink.bytes_ == m.whole);
    CHECK(sink.contract_kept_);
    CHECK(m.hub.counters().retries >= 1);
  }
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
  // Waits until the request's backoff has looked at the clock `more` times after `from`
  // (Counters::clock_checks: counted after each look has acted), instead of sleeping.
  auto clock_looks = [&](uint64_t from, uint64_t more) {
    for (int i = 0; i < 10000 && hub.counters().clock_checks < from + more; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return hub.counters().clock_checks >= from + more;
  };
  // The 429 was taken in and the wait began (its deadline is 30 s from now on the clock).
  REQUIRE(clock_looks(hub.counters().clock_checks, 1));
  const uint64_t sent = hub.counters().requests;
  clock.Advance(std::chrono::milliseconds(29900));
  // Of the looks that end after this read, the second began after it, so saw 29.9 s (a look
  // is counted after it acted): it did not send.
  REQUIRE(clock_looks(hub.counters().clock_checks, 2));
  CHECK(hub.counters().requests == sent);
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

  check(authed.Resolve(fixtures::kHostileRepo, "main").status(), StatusCode::kInvalidArgument,
        "unsafe path");
  for (const Status& s : seen) CHECK(s.message().find(kToken) == std::string::npos);
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

TEST_CASE("Stop ends a Resolve waiting out Retry-After and every fetch, and refuses new work") {
  World& w = W();
  Hub hub(Opts(w));
  auto r = hub.Resolve(fixtures::kModelRepo, "main");
  REQUIRE(r.ok());
  REQUIRE(w.emu.SetFaults({{{"match", "/api/models/"}, {"status_sequence", {503, 503, 503}}, {"retry_after", 30}},
                           {{"match", "model.safetensors"}, {"status_sequence", {503, 503, 503}}, {"retry_after", 30}}})
              .ok());
  TestSink sink;
  hub.Fetch(SpecOf(*r, "model.safetensors"), &sink);
  Result<ResolvedRevision> blocked = Status::Transient("not run yet");
  auto t0 = std::chrono::steady_clock::now();
  std::thread resolver([&] { blocked = hub.Resolve(fixtures::kVersionsRepo, "main"); });
  // Both got their 503 with Retry-After: 30 and sit in that wait.
  for (int i = 0; i < 1000 && (LogFor(w, "model.safetensors").empty() ||
                               LogFor(w, "/api/models/" + std::string(fixtures::kVersionsRepo))
                                   .empty());
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE_FALSE(LogFor(w, "model.safetensors").empty());
  hub.Stop();
  resolver.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(secs < 5);
  CHECK(blocked.status().code() == StatusCode::kCancelled);
  CHECK(sink.Wait().code() == StatusCode::kCancelled);
  CHECK(sink.size() == 0);
  TestSink later;
  hub.Fetch(SpecOf(*r, "config.json"), &later);
  CHECK(later.Wait().code() == StatusCode::kCancelled);
  CHECK(hub.Resolve(fixtures::kModelRepo, "main").status().code() == StatusCode::kCancelled);
}

TEST_CASE("Every fault gets the same verdict through libcurl and through the range reader") {
  // A range under 1 MiB is libcurl's; the whole weights (1 MiB or more) are the range
  // reader's (net/range_reader.h), received in place. The answer's checks are the Request's
  // either way: the same code, the same retries, nothing delivered where it fails, the exact
  // bytes where it does not.
  const std::vector<std::pair<const char*, json>> faults = {
      {"ignore_range", {{"ignore_range", true}}},
      {"wrong_content_range shift", {{"wrong_content_range", "shift"}}},
      {"wrong_content_range total", {{"wrong_content_range", "total"}}},
      {"gzip", {{"gzip", true}}},
      {"503 twice", {{"status_sequence", {503, 503}}}},
      {"404", {{"status_sequence", {404}}}},
      {"dropped before the body", {{"drop_after_bytes", 0}, {"times", 1}}},
      {"the CDN's own ETag", {{"bad_etag", true}}},
      {"no ETag from the CDN", {{"strip_etag", true}}},
  };
  for (const auto& [name, effect] : faults) {
    const std::string fault = name;
    CAPTURE(fault);
    StatusCode codes[2];
    uint64_t retries[2];
    for (int reader = 0; reader < 2; ++reader) {
      CAPTURE(reader);
      ModelHub m;
      json rule = effect;
      rule["match"] = "model.safetensors";
      rule["listener"] = "cdn";
      REQUIRE(m.w.emu.SetFaults(json::array({rule})).ok());
      const ByteRange range{0, reader ? m.whole.size() : 500000};
      TestSink sink(0, /*lend=*/true);
      m.hub.Fetch(SpecOf(m.r, "model.safetensors", range), &sink);
      Status s = sink.Wait();
      codes[reader] = s.code();
      retries[reader] = m.hub.counters().retries;
      CHECK(sink.contract_kept_);
      CHECK((sink.placed_ > 0) == (reader == 1 && s.ok()));
      if (s.ok()) {
        CHECK(sink.bytes_ == m.whole.substr(0, range.end));
      } else {
        CHECK(sink.size() == 0);
      }
    }
    CHECK(codes[0] == codes[1]);
    CHECK(retries[0] == retries[1]);
  }
}

}  // namespace
}  // namespace modelsync::net
