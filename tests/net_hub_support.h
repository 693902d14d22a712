// Shared by the hub client tests (net_hub_test.cc, net_fault_test.cc): one fixture
// directory and one emulator for the whole binary, options, a collecting sink, helpers.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "net/hub.h"
#include "support/emulator.h"

namespace modelsync::net::hubtest {

using nlohmann::json;
using testing::EmulatorProcess;
using testing::FixtureDir;

inline constexpr char kToken[] = "hf_net_test_secret_token";

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

inline World& W() {
  static World w;
  // Clean counters. A request an earlier case left in flight (a cancelled fetch, a destroyed
  // Hub) came on a connection accepted before this reset: the emulator closes it unserved and
  // never counts it (tools/EMULATOR.md "reset"), so no pause is needed.
  REQUIRE(w.emu.Reset().ok());
  return w;
}

inline HubOptions Opts(const World& w, bool token = true) {
  HubOptions o;
  o.endpoint = w.emu.hub_url();
  if (token) o.token = kToken;
  o.backoff_base = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(50);
  o.stall_timeout = std::chrono::milliseconds(1000);
  o.connect_timeout = std::chrono::milliseconds(2000);
  return o;
}

// Collects a fetch's bytes; checks offsets are contiguous. With `lend`, it also lends memory
// for receiving in place (FetchSink::Space: kLendBytes at a time), and checks the contract:
// every Space that lends is answered by one Placed for the same offset before anything else.
class TestSink : public FetchSink {
 public:
  static constexpr size_t kLendBytes = 100000;  // not a power of two: pieces end anywhere
  explicit TestSink(uint64_t begin = 0, bool lend = false) : lend_(lend), next_(begin) {}
  Status Space(uint64_t offset, size_t max, char** data, size_t* size) override {
    std::lock_guard<std::mutex> l(mu_);
    if (lent_ || offset != next_) contract_kept_ = false;
    *data = nullptr;
    *size = 0;
    if (!lend_) return Status::Ok();
    landing_.resize(kLendBytes);
    *data = landing_.data();
    *size = std::min(max, kLendBytes);
    lent_ = true;
    lent_at_ = offset;
    return Status::Ok();
  }
  Status Placed(uint64_t offset, size_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!lent_ || offset != lent_at_ || offset != next_ || n > kLendBytes) contract_kept_ = false;
    lent_ = false;
    next_ = offset + n;
    placed_ += n;
    bytes_.append(landing_.data(), n);
    return Status::Ok();
  }
  Status OnData(uint64_t offset, const char* data, size_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    if (lent_) contract_kept_ = false;
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
  bool contract_kept_ = true;  // Space / Placed as FetchSink says
  uint64_t placed_ = 0;        // bytes received in place
  int done_count_ = 0;
  int64_t fail_after_ = -1;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const bool lend_;
  std::string landing_;
  bool lent_ = false;
  uint64_t lent_at_ = 0;
  uint64_t next_;
  Status status_;
};

inline const v1::FileEntry& FileOf(const ResolvedRevision& r, const std::string& path) {
  for (const auto& f : r.files) {
    if (f.path() == path) return f;
  }
  FAIL("no " << path << " in " << r.repo);
  static v1::FileEntry none;
  return none;
}

inline FetchSpec SpecOf(const ResolvedRevision& r, const std::string& path, ByteRange range = {}) {
  const auto& f = FileOf(r, path);
  return FetchSpec{r.repo, r.commit, path, f.size(), f.git_oid(), f.lfs_sha256(), range};
}

inline std::string Content(const World& w, const std::string& repo, const std::string& path) {
  auto data = ReadFile(w.fixtures.ObjectPath(repo, "main", path));
  REQUIRE(data.ok());
  return *data;
}

inline json Stats(World& w) {
  auto s = w.emu.Stats();
  REQUIRE(s.ok());
  return *s;
}

inline uint64_t Requests(World& w, const char* listener) {
  return Stats(w)[listener].value("requests", uint64_t{0});
}

// Log entries for paths containing `part`.
inline std::vector<json> LogFor(World& w, const std::string& part) {
  auto log = w.emu.Log();
  REQUIRE(log.ok());
  std::vector<json> out;
  const json& entries = log->is_array() ? *log : (*log)["entries"];
  for (const auto& e : entries) {
    if (e.value("path", "").find(part) != std::string::npos) out.push_back(e);
  }
  return out;
}

// A listening socket on addr:port (port 0: any), backlog `backlog`; -1 when it cannot bind.
inline int ListenOn(const char* addr, int port, int backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, addr, &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// addr:port drops every SYN, as towards a broken route: a listener that never accepts, its
// accept queue (backlog 0) filled by one connection (Linux drops SYNs for a full accept
// queue; the client retransmits and waits). ok is false when addr:port cannot be bound.
struct SynDropper {
  SynDropper(const char* addr, int port) {
    hole = ListenOn(addr, port, 0);
    if (hole < 0) return;
    filler = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, addr, &a.sin_addr);
    ok = ::connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~SynDropper() {
    if (filler >= 0) ::close(filler);
    if (hole >= 0) ::close(hole);
  }
  SynDropper(const SynDropper&) = delete;
  SynDropper& operator=(const SynDropper&) = delete;
  int hole = -1, filler = -1;
  bool ok = false;
};

// A hub on the emulator (reset) with the model resolved, and its weights (a range of 1 MiB or
// more: the range reader's). Faults set after it apply to the fetches.
struct ModelHub {
  ModelHub() : w(W()), hub(Opts(w)) {
    auto resolved = hub.Resolve(fixtures::kModelRepo, "main");
    REQUIRE(resolved.ok());
    r = *resolved;
    whole = Content(w, fixtures::kModelRepo, "model.safetensors");
    REQUIRE(whole.size() >= (1u << 20));
  }
  Status Fetch(TestSink& sink) {
    hub.Fetch(SpecOf(r, "model.safetensors"), &sink);
    return sink.Wait();
  }
  World& w;
  Hub hub;
  ResolvedRevision r;
  std::string whole;
};

}  // namespace modelsync::net::hubtest
