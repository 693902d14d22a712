// HubApp: the emulator's request handling, independent of sockets. server.cc parses a request
// into Request, asks HubApp for a Response, then applies ranges and body faults while sending.
//
// Routes (PROTOCOL.md §2, §9; tools/EMULATOR.md):
//   hub: GET|HEAD /api/models/{org}/{name}[/revision/{rev}]
//        GET /api/models/{org}/{name}/tree/{rev}[/{path}]
//        POST /api/models/{org}/{name}/paths-info/{rev}
//        GET|HEAD /{org}/{name}/resolve/{rev}/{path}
//        GET|HEAD /{org}/{name}/raw/{rev}/{path}     (LFS files: the pointer text)
//        GET|HEAD /api/resolve-cache/models/{org}/{name}/{commit}/{path}
//        /_emulator/... control API
//   cdn: GET|HEAD /repos/{org}/{name}/{sha256}/{path}?Expires=..&Signature=..
//
// Thread-safe: Handle() is called concurrently from connection threads.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "emulator/faults.h"
#include "emulator/http_util.h"
#include "emulator/repo_store.h"

namespace modelsync::emulator {

struct Request {
  Listener listener = Listener::kHub;
  std::string method;
  std::string target;    // as received
  std::string raw_path;  // target without the query, still percent-encoded
  std::string path;      // percent-decoded raw_path (for logs and fault matching)
  std::string query;     // raw query string (without '?')
  Query params;
  std::string range;  // Range header, "" if absent
  bool has_authorization = false;
  std::string bearer;  // token after "Bearer ", "" if none
  std::string content_type;
  std::string body;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // in-memory body (JSON, text)
  // When file is set, the body is that file's bytes (ranges apply; body above is ignored).
  std::string file;
  uint64_t file_size = 0;
  // Ranges apply to the in-memory body too (raw LFS pointers).
  bool ranged_body = false;
  bool chunked = false;  // Transfer-Encoding: chunked, no Content-Length (gzip fault)
  void Header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

struct AppConfig {
  std::string repos_dir;
  std::string hub_url;  // "http://127.0.0.1:P", filled in once bound
  std::string cdn_url;
  size_t page_size = 1000;
  bool resolve_cache = false;
  std::string token;  // the token approved for gated and private repos ("" = none)
};

class HubApp {
 public:
  explicit HubApp(AppConfig config);
  Status Load() { return store_.Reload(); }
  void SetUrls(std::string hub, std::string cdn);

  Response Handle(const Request& req);

  FaultTable& faults() { return faults_; }
  Recorder& recorder() { return recorder_; }
  // Grows by one at every reset. A connection accepted before the last reset belongs to an
  // earlier test: its requests are neither served nor counted (the server closes it), so a
  // request a finished test left in flight never lands in the next test's counters.
  uint64_t epoch() const { return epoch_.load(); }

 private:
  // app_api.cc
  Response HandleApi(const Request& req, const std::vector<std::string>& seg);
  Response ModelInfo(const Request& req, const Repo& repo, const std::string& rev);
  Response Tree(const Request& req, const Repo& repo, const std::string& rev,
                const std::string& sub);
  Response PathsInfo(const Request& req, const Repo& repo, const std::string& rev);
  // app_resolve.cc
  enum class ResolveMode { kResolve, kResolveCache, kRaw };
  Response Resolve(const Request& req, const Repo& repo, const std::string& rev,
                   const std::string& path, ResolveMode mode);
  Response Cdn(const Request& req, const std::vector<std::string>& seg);
  std::string CdnUrl(const Repo& repo, const RepoFile& f) const;
  // app_control.cc
  Response Control(const Request& req, const std::vector<std::string>& seg);

  // Access checks. nullopt = allowed; otherwise the error response.
  bool Authorized(const Request& req) const {
    return !config_.token.empty() && req.bearer == config_.token;
  }
  std::optional<Response> CheckRepoVisible(const Request& req, const Repo* repo,
                                           const std::string& id);
  std::optional<Response> CheckGate(const Request& req, const Repo& repo);
  // A relative 307 to the repo's new name when `id` was renamed (PROTOCOL §2.1, §2.4 case C).
  std::optional<Response> RenameRedirect(const Request& req, const std::string& id,
                                         size_t org_segment);

  AppConfig config_;
  std::atomic<size_t> page_size_;
  std::atomic<bool> resolve_cache_;
  std::mutex renames_mu_;
  std::atomic<uint64_t> epoch_{0};
  std::map<std::string, std::string> renames_;  // old repo id -> new repo id
  RepoStore store_;
  FaultTable faults_;
  Recorder recorder_;
};

// Error answer as the Hub sends it: X-Error-Code, X-Error-Message and {"error": message}.
Response HubError(int status, const std::string& code, const std::string& message);
Response JsonResponse(int status, const nlohmann::json& j);
nlohmann::json TreeEntry(const RepoCommit& c, const RepoFile& f, bool expand);
nlohmann::json DirectoryEntry(const RepoCommit& c, const std::string& dir, bool expand);

}  // namespace modelsync::emulator
