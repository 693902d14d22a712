#include "support/memory_hub.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

#include "base/fs.h"

namespace modelsync::testing {
namespace {

using nlohmann::json;
constexpr size_t kPiece = 64 << 10;

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Response {
  net::ResponseHead head;
  std::string body;
  std::string object;   // the fixture object the body came from ("" = none)
  uint64_t offset = 0;  // of body within that object
};

}  // namespace

class MemoryHub::Impl : public std::enable_shared_from_this<MemoryHub::Impl> {
 public:
  explicit Impl(std::string dir) : dir_(std::move(dir)) {}

  // The answer to one exchange, decided as the emulator would.
  Response Answer(const net::ExchangeSpec& spec) {
    {
      std::lock_guard<std::mutex> l(mu_);
      seen_.push_back({spec.url, spec.range, spec.authorization, spec.range_bytes,
                       spec.own_connection, spec.pipewait});
    }
    const std::string hub = MemoryHub::kHubUrl;
    const std::string cdn = std::string("https://") + kCdnHost;
    std::string path = spec.url, query;
    if (size_t q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path.resize(q);
    }
    if (path.rfind(cdn + "/", 0) == 0) return Cdn(path.substr(cdn.size() + 1), spec);
    if (path.rfind(hub + "/", 0) != 0) return Status(404, "no such host");
    path = PercentDecode(path.substr(hub.size() + 1));
    if (path.rfind("api/models/", 0) == 0) return Api(path.substr(11));
    // {org}/{name}/resolve/{commit}/{file}
    size_t a = path.find('/'), b = a == std::string::npos ? a : path.find('/', a + 1);
    if (b == std::string::npos || path.compare(b, 9, "/resolve/") != 0) return Status(404, "?");
    const std::string repo = path.substr(0, b);
    std::string rest = path.substr(b + 9);
    size_t c = rest.find('/');
    if (c == std::string::npos) return Status(404, "?");
    return Resolve(repo, rest.substr(0, c), rest.substr(c + 1), spec);
  }

  void DropOnce(const std::string& suffix, uint64_t after) {
    std::lock_guard<std::mutex> l(mu_);
    drops_.push_back({suffix, after});
  }
  // Bytes after which this exchange breaks, or UINT64_MAX.
  uint64_t TakeDrop(const std::string& url) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = drops_.begin(); it != drops_.end(); ++it) {
      if (url.substr(0, url.find('?')).ends_with(it->first)) {
        uint64_t n = it->second;
        drops_.erase(it);
        return n;
      }
    }
    return UINT64_MAX;
  }
  void Corrupt(const std::string& suffix, uint64_t offset) {
    std::lock_guard<std::mutex> l(mu_);
    corrupt_.push_back({suffix, offset});
  }
  std::vector<MemoryHub::Seen> seen() const {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }
  void ClearSeen() {
    std::lock_guard<std::mutex> l(mu_);
    seen_.clear();
  }
  std::atomic<uint64_t> pauses{0};

 private:
  static Response Status(long status, const std::string& message) {
    Response r;
    r.head.status = status;
    r.head.headers = {{"x-error-message", message}, {"content-type", "application/json"}};
    r.body = json{{"error", message}}.dump();
    return r;
  }

  // repo.json, parsed once per version of the file (its size and modification time): a
  // many-files fixture's (600 files) took ~15 ms to parse in a debug build, on every request.
  json RepoJson(const std::string& repo) {
    const std::string path = dir_ + "/" + repo + "/repo.json";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return json();
    const std::string version = std::to_string(st.st_size) + "/" +
                                std::to_string(st.st_mtim.tv_sec) + "." +
                                std::to_string(st.st_mtim.tv_nsec);
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = repo_json_.find(path);
      if (it != repo_json_.end() && it->second.first == version) return it->second.second;
    }
    auto text = ReadFile(path);
    if (!text.ok()) return json();
    json parsed = json::parse(*text, nullptr, false);
    std::lock_guard<std::mutex> l(mu_);
    repo_json_[path] = {version, parsed};
    return parsed;
  }

  Response Api(const std::string& rest) {
    // {org}/{name}/revision/{ref}  or  {org}/{name}/tree/{commit}
    size_t a = rest.find('/'), b = a == std::string::npos ? a : rest.find('/', a + 1);
    if (b == std::string::npos) return Status(404, "?");
    json rj = RepoJson(rest.substr(0, b));
    if (!rj.is_object()) return Status(404, "Repository not found");
    const std::string tail = rest.substr(b + 1);
    Response r;
    r.head.status = 200;
    r.head.headers = {{"content-type", "application/json"}};
    if (tail.rfind("revision/", 0) == 0) {
      std::string ref = tail.substr(9);
      if (!rj["refs"].contains(ref)) return Status(404, "Revision not found");
      r.body = json{{"sha", rj["refs"][ref]}}.dump();
      return r;
    }
    if (tail.rfind("tree/", 0) == 0) {
      std::string commit = tail.substr(5);
      if (!rj["commits"].contains(commit)) return Status(404, "Revision not found");
      json out = json::array();
      for (const auto& f : rj["commits"][commit]["files"]) {
        json e{{"type", "file"}, {"path", f["path"]}, {"oid", f["git_oid"]}};
        if (f.contains("lfs_sha256") && f["lfs_sha256"].is_string()) {
          e["size"] = f["pointer_size"];
          e["lfs"] = {{"oid", f["lfs_sha256"]}, {"size", f["size"]}, {"pointerSize", f["pointer_size"]}};
        } else {
          e["size"] = f["size"];
        }
        out.push_back(e);
      }
      r.body = out.dump();
      return r;
    }
    return Status(404, "?");
  }

  Response Resolve(const std::string& repo, const std::string& commit, const std::string& file,
                   const net::ExchangeSpec& spec) {
    json rj = RepoJson(repo);
    if (!rj.is_object()) return Status(404, "Repository not found");
    std::string sha = rj["refs"].contains(commit) ? rj["refs"][commit].get<std::string>() : commit;
    if (!rj["commits"].contains(sha)) return Status(404, "Revision not found");
    for (const auto& f : rj["commits"][sha]["files"]) {
      if (f["path"] != file) continue;
      const std::string object = f["object"];
      const uint64_t size = f["size"];
      if (f.contains("lfs_sha256") && f["lfs_sha256"].is_string()) {
        Response r;
        r.head.status = 302;
        const auto expires = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count() + 3600;
        r.head.headers = {{"location", std::string("https://") + kCdnHost + "/" + repo + "/" +
                                           object + "?Expires=" + std::to_string(expires)},
                          {"x-linked-etag", "\"" + f["lfs_sha256"].get<std::string>() + "\""},
                          {"x-linked-size", std::to_string(size)},
                          {"x-repo-commit", sha},
                          {"etag", "\"" + f["git_oid"].get<std::string>() + "\""}};
        return r;
      }
      Response r = Body(repo, object, size, spec);
      r.head.headers.push_back({"etag", "\"" + f["git_oid"].get<std::string>() + "\""});
      r.head.headers.push_back({"x-repo-commit", sha});
      return r;
    }
    return Status(404, "Entry not found");
  }

  Response Cdn(const std::string& rest, const net::ExchangeSpec& spec) {
    // {org}/{name}/{object}
    size_t slash = rest.rfind('/');
    if (slash == std::string::npos) return Status(404, "?");
    const std::string repo = rest.substr(0, slash), object = rest.substr(slash + 1);
    const std::string file = dir_ + "/" + repo + "/objects/" + object;
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) return Status(404, "?");
    return Body(repo, object, static_cast<uint64_t>(in.tellg()), spec);
  }

  Response Body(const std::string& repo, const std::string& object, uint64_t size,
                const net::ExchangeSpec& spec) {
    Response r;
    // base's ReadFile (64 KiB reads): an istreambuf_iterator a character at a time took
    // ~0.15 s per 3 MiB request in a debug build.
    auto read = ReadFile(dir_ + "/" + repo + "/objects/" + object);
    std::string bytes = read.ok() ? std::move(*read) : std::string();
    uint64_t a = 0, b = size == 0 ? 0 : size - 1;
    if (!spec.range.empty() &&
        std::sscanf(spec.range.c_str(), "bytes=%" SCNu64 "-%" SCNu64, &a, &b) == 2 && a <= b && b < size) {
      r.head.status = 206;
      r.head.headers = {{"content-range", "bytes " + std::to_string(a) + "-" +
                                              std::to_string(b) + "/" + std::to_string(size)}};
    } else {
      r.head.status = 200;
      a = 0;
      b = size == 0 ? 0 : size - 1;
    }
    r.body = size == 0 ? "" : bytes.substr(a, b - a + 1);
    r.object = object;
    r.offset = a;
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [suffix, at] : corrupt_) {
      if (spec.url.substr(0, spec.url.find('?')).ends_with(suffix) && at >= a && at - a < r.body.size())
        r.body[at - a] ^= 0x5a;
    }
    if (spec.head) r.body.clear();
    return r;
  }

  std::string dir_;
  mutable std::mutex mu_;
  std::vector<MemoryHub::Seen> seen_;
  std::vector<std::pair<std::string, uint64_t>> drops_;
  std::vector<std::pair<std::string, uint64_t>> corrupt_;
  std::map<std::string, std::pair<std::string, json>> repo_json_;  // path -> {version, parsed}
};

namespace {

// One exchange: the answer decided at Start, its body handed out in posted pieces.
class MemoryExchange final : public net::Transport::Exchange {
 public:
  MemoryExchange(boost::asio::io_context& io, MemoryHub::Impl& hub, Response response,
                 uint64_t drop_after, net::ExchangeHandler* handler, net::Transport::Done done)
      : io_(io), hub_(hub), r_(std::move(response)), drop_after_(drop_after), handler_(handler),
        done_(std::move(done)) {}
  ~MemoryExchange() override { *alive_ = false; }

  void Begin() {
    Post([this] {
      if (!handler_->OnHead(r_.head)) return End(net::TransportError::kAborted, "aborted");
      Step();
    });
  }

  void Unpause() override {
    if (!paused_) return;
    paused_ = false;
    Post([this] { Step(); });
  }

 private:
  void Post(std::function<void()> fn) {
    std::weak_ptr<bool> alive = alive_;
    boost::asio::post(io_, [alive, fn = std::move(fn)] {
      if (auto a = alive.lock(); a && *a) fn();
    });
  }

  void Step() {
    if (sent_ >= drop_after_) return End(net::TransportError::kDropped, "connection reset by peer");
    if (sent_ == r_.body.size()) return End(net::TransportError::kNone, "");
    size_t n = std::min<uint64_t>({kPiece, r_.body.size() - sent_, drop_after_ - sent_});
    switch (handler_->OnBody(r_.body.data() + sent_, n)) {
      case net::BodyAction::kTaken:
        sent_ += n;
        Post([this] { Step(); });
        return;
      case net::BodyAction::kPause:
        paused_ = true;  // the same piece again after Unpause()
        ++hub_.pauses;
        return;
      case net::BodyAction::kStop:
        return End(net::TransportError::kAborted, "aborted by the handler");
    }
  }

  void End(net::TransportError error, std::string detail) {
    net::ExchangeResult result;
    result.error = error;
    result.detail = std::move(detail);
    net::Transport::Done done = std::move(done_);
    done(result);  // may destroy this
  }

  boost::asio::io_context& io_;
  MemoryHub::Impl& hub_;
  Response r_;
  uint64_t drop_after_;
  net::ExchangeHandler* handler_;
  net::Transport::Done done_;
  uint64_t sent_ = 0;
  bool paused_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class MemoryTransport final : public net::Transport {
 public:
  MemoryTransport(boost::asio::io_context& io, std::shared_ptr<MemoryHub::Impl> hub)
      : io_(io), hub_(std::move(hub)) {}
  Result<std::unique_ptr<Exchange>> Start(const net::ExchangeSpec& spec,
                                          net::ExchangeHandler* handler, Done done) override {
    auto ex = std::make_unique<MemoryExchange>(io_, *hub_, hub_->Answer(spec), hub_->TakeDrop(spec.url),
                                               handler, std::move(done));
    ex->Begin();
    return std::unique_ptr<Exchange>(std::move(ex));
  }
  void Shutdown() override {}

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<MemoryHub::Impl> hub_;
};

class MemoryFactory final : public net::TransportFactory {
 public:
  explicit MemoryFactory(std::shared_ptr<MemoryHub::Impl> hub) : hub_(std::move(hub)) {}
  std::unique_ptr<net::Transport> Make(boost::asio::io_context& loop, int) override {
    return std::make_unique<MemoryTransport>(loop, hub_);
  }

 private:
  std::shared_ptr<MemoryHub::Impl> hub_;
};

}  // namespace

MemoryHub::MemoryHub(std::string fixture_dir)
    : impl_(std::make_shared<Impl>(std::move(fixture_dir))) {}

engine::Env MemoryHub::env() {
  engine::Env env = engine::RealEnv();
  env.config.endpoint = kHubUrl;
  env.transport = factory();
  return env;
}

std::shared_ptr<net::TransportFactory> MemoryHub::factory() {
  return std::make_shared<MemoryFactory>(impl_);
}
void MemoryHub::DropOnce(const std::string& s, uint64_t n) { impl_->DropOnce(s, n); }
void MemoryHub::Corrupt(const std::string& s, uint64_t offset) { impl_->Corrupt(s, offset); }
std::vector<MemoryHub::Seen> MemoryHub::seen() const { return impl_->seen(); }
void MemoryHub::ClearSeen() { impl_->ClearSeen(); }
uint64_t MemoryHub::pauses() const { return impl_->pauses.load(); }

}  // namespace modelsync::testing
