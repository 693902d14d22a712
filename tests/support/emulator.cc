#include "support/emulator.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/fs.h"

namespace modelsync::testing {

namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "test support: %s\n", msg.c_str());
  std::abort();
}

size_t WriteBody(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

size_t WriteHeader(char* p, size_t size, size_t n, void* ud) {
  auto* h = static_cast<std::map<std::string, std::string>*>(ud);
  std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    h->clear();  // a new response (after a redirect or 100-continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
  (*h)[name] = value;
  return size * n;
}

}  // namespace

FixtureDir::FixtureDir(const fixtures::FixtureOptions& options) {
  auto made = fixtures::MakeFixtures(dir_.path(), options);
  if (!made.ok()) Die("cannot build fixtures: " + made.status().ToString());
}

nlohmann::json FixtureDir::RepoJson(const std::string& repo_id) const {
  auto text = ReadFile(path() + "/" + repo_id + "/repo.json");
  if (!text.ok()) Die("no repo.json for " + repo_id);
  return nlohmann::json::parse(*text);
}

std::string FixtureDir::ObjectPath(const std::string& repo_id, const std::string& ref,
                                   const std::string& file) const {
  nlohmann::json j = RepoJson(repo_id);
  std::string sha = j["refs"].contains(ref) ? j["refs"][ref].get<std::string>() : ref;
  if (!j["commits"].contains(sha)) return "";
  for (const auto& f : j["commits"][sha]["files"]) {
    if (f["path"] == file)
      return path() + "/" + repo_id + "/objects/" + f["object"].get<std::string>();
  }
  return "";
}

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpResponse Http(const std::string& url, const HttpOptions& o) {
  static const bool kInit = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)kInit;
  HttpResponse r;
  CURL* c = curl_easy_init();
  curl_slist* hdrs = nullptr;
  for (const std::string& h : o.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o.timeout_ms);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (o.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (o.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o.method.c_str());
  }
  if (!o.body.empty() || o.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, o.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(o.body.size()));
  }
  CURLcode rc = curl_easy_perform(c);
  r.curl_code = static_cast<int>(rc);
  if (rc != CURLE_OK) r.error = err[0] ? err : curl_easy_strerror(rc);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return r;
}

EmulatorProcess::EmulatorProcess(Options options) : options_(std::move(options)) {}

EmulatorProcess::~EmulatorProcess() { Stop(); }

std::string EmulatorProcess::BinaryPath() {
  const char* b = std::getenv("MODELSYNC_BUILD_DIR");
  return std::string(b && *b ? b : "build") + "/tools/emulator/hub_emulator";
}

Status EmulatorProcess::Start() {
  if (pid_ > 0) return Status::InvalidArgument("emulator already running");
  std::vector<std::string> args = {BinaryPath(),
                                   "--repos",
                                   options_.repos_dir,
                                   "--port",
                                   std::to_string(hub_port_),
                                   "--cdn-port",
                                   std::to_string(cdn_port_),
                                   "--page-size",
                                   std::to_string(options_.page_size)};
  if (!options_.token.empty()) args.insert(args.end(), {"--token", options_.token});
  if (options_.resolve_cache) args.push_back("--resolve-cache");
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "cannot exec %s\n", argv[0]);
    ::_exit(127);
  }
  ::close(fds[1]);
  pid_ = pid;
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[512];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  auto j = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
  if (j.is_discarded() || !j.contains("hub") || !j.contains("cdn")) {
    Stop();
    return Status::IOError("hub_emulator (" + args[0] + ") did not print its ready line; got '" +
                           line + "'. Build it with: ninja -C build hub_emulator");
  }
  hub_url_ = j["hub"];
  cdn_url_ = j["cdn"];
  hub_port_ = static_cast<uint16_t>(std::stoi(hub_url_.substr(hub_url_.rfind(':') + 1)));
  cdn_port_ = static_cast<uint16_t>(std::stoi(cdn_url_.substr(cdn_url_.rfind(':') + 1)));
  return Status::Ok();
}

void EmulatorProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Result<nlohmann::json> EmulatorProcess::Control(const std::string& method, const std::string& op,
                                                const nlohmann::json& body) {
  if (pid_ <= 0) return Status::InvalidArgument("emulator is not running");
  HttpOptions o;
  o.method = method;
  if (method == "POST") {
    o.body = body.is_null() ? "" : body.dump();
    o.headers = {"Content-Type: application/json"};
  }
  HttpResponse r = Http(hub_url_ + "/_emulator/" + op, o);
  if (r.curl_code != 0) return Status::IOError("control " + op + ": " + r.error);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200 || j.is_discarded()) {
    return Status::InvalidArgument("control " + op + " answered " + std::to_string(r.status) +
                                   ": " + r.body);
  }
  return j;
}

Status EmulatorProcess::SetFaults(const nlohmann::json& f) {
  return Control("POST", "faults", f.is_array() ? nlohmann::json{{"faults", f}} : f).status();
}
Status EmulatorProcess::AddFaults(const nlohmann::json& f) {
  nlohmann::json body = f.is_array() ? nlohmann::json{{"faults", f}} : f;
  body["append"] = true;
  return Control("POST", "faults", body).status();
}
Status EmulatorProcess::Reset() { return Control("POST", "reset", nullptr).status(); }
Status EmulatorProcess::Reload() { return Control("POST", "reload", nullptr).status(); }
Status EmulatorProcess::Configure(const nlohmann::json& c) {
  return Control("POST", "config", c).status();
}
Status EmulatorProcess::MoveRef(const std::string& repo, const std::string& ref,
                                const std::string& commit) {
  return Control("POST", "refs", {{"repo", repo}, {"ref", ref}, {"commit", commit}}).status();
}
Result<nlohmann::json> EmulatorProcess::Stats() { return Control("GET", "stats", nullptr); }
Result<nlohmann::json> EmulatorProcess::Log(uint64_t since) {
  return Control("GET", "log?since=" + std::to_string(since), nullptr);
}

}  // namespace modelsync::testing
