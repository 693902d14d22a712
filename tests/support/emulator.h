// Test support: run tools/emulator/hub_emulator as a child process, talk to its control API,
// build fixtures in a temporary directory, and make plain HTTP requests with libcurl easy.
//
// Not thread-safe: one test thread drives an EmulatorProcess. See tools/EMULATOR.md for the
// emulator's endpoints, fault rules and stats format.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "fixtures/fixtures.h"
#include "temp_dir.h"

namespace modelsync::testing {

// The standard fixtures (tools/fixtures/fixtures.h) built into a fresh TempDir. Aborts the
// test binary (with a message) when they cannot be written.
class FixtureDir {
 public:
  explicit FixtureDir(const fixtures::FixtureOptions& options = {});
  const std::string& path() const { return dir_.path(); }
  // Object file of a repo file at a ref ("" when not found); for byte checks.
  std::string ObjectPath(const std::string& repo_id, const std::string& ref,
                         const std::string& file) const;
  // The parsed repo.json of a repo.
  nlohmann::json RepoJson(const std::string& repo_id) const;

 private:
  TempDir dir_;
};

struct HttpResponse {
  long status = 0;    // 0 when the transfer failed before a status line
  int curl_code = 0;  // CURLcode of the transfer
  std::string error;  // curl's error text when curl_code != 0
  std::string body;
  std::map<std::string, std::string> headers;  // of the last response; lowercase names
  std::string Header(const std::string& lowercase_name) const;
};

struct HttpOptions {
  std::string method = "GET";        // "HEAD" uses CURLOPT_NOBODY
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  bool follow_redirects = false;
  long timeout_ms = 20000;

  HttpOptions& Method(std::string m) {
    method = std::move(m);
    return *this;
  }
  HttpOptions& Header(std::string h) {
    headers.push_back(std::move(h));
    return *this;
  }
  HttpOptions& Follow() {
    follow_redirects = true;
    return *this;
  }
  HttpOptions& Timeout(long ms) {
    timeout_ms = ms;
    return *this;
  }
};

HttpResponse Http(const std::string& url, const HttpOptions& options = {});

class EmulatorProcess {
 public:
  struct Options {
    std::string repos_dir;
    std::string token;  // --token (approved for gated/private repos)
    size_t page_size = 1000;
    bool resolve_cache = false;
    std::vector<std::string> extra_args;
  };
  explicit EmulatorProcess(Options options);
  ~EmulatorProcess();  // Stop()
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  // Starts the emulator and waits (up to 15 s) for its ready line. After a Stop(), starts it
  // again on the same two ports.
  Status Start();
  // SIGKILLs the emulator and reaps it. Idempotent.
  void Stop();
  bool running() const { return pid_ > 0; }

  const std::string& hub_url() const { return hub_url_; }
  const std::string& cdn_url() const { return cdn_url_; }
  uint16_t hub_port() const { return hub_port_; }
  uint16_t cdn_port() const { return cdn_port_; }

  // Control API (tools/EMULATOR.md). faults: {"faults":[...]} or a bare array of rules.
  Status SetFaults(const nlohmann::json& faults);
  Status AddFaults(const nlohmann::json& faults);
  Status Reset();
  Status Reload();
  Status Configure(const nlohmann::json& config);  // {"page_size":N,"resolve_cache":bool}
  Status MoveRef(const std::string& repo, const std::string& ref, const std::string& commit);
  Result<nlohmann::json> Stats();
  Result<nlohmann::json> Log(uint64_t since_seq = 0);

  // $MODELSYNC_BUILD_DIR/tools/emulator/hub_emulator.
  static std::string BinaryPath();

 private:
  Result<nlohmann::json> Control(const std::string& method, const std::string& op,
                                 const nlohmann::json& body);

  Options options_;
  pid_t pid_ = -1;
  std::string hub_url_, cdn_url_;
  uint16_t hub_port_ = 0, cdn_port_ = 0;
};

}  // namespace modelsync::testing
