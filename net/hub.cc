#include "net/hub.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/hash.h"
#include "base/path_rules.h"
#include "base/strings.h"
#include "net/api_request.h"
#include "net/curl_transport.h"
#include "net/fetch_request.h"
#include "net/hub_json.h"
#include "net/rate_limiter.h"
#include "net/request.h"
#include "net/url.h"

namespace modelsync::net {

namespace asio = boost::asio;

namespace {

bool IsRepoSegment(std::string_view s) {
  if (s.empty() || s.size() > 96 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.';
  });
}

Status CheckRepo(const std::string& repo) {
  size_t slash = repo.find('/');
  bool ok = slash == std::string::npos
                ? IsRepoSegment(repo)
                : IsRepoSegment(std::string_view(repo).substr(0, slash)) &&
                      IsRepoSegment(std::string_view(repo).substr(slash + 1));
  if (!ok) {
    return Status::InvalidArgument("'" + repo.substr(0, 200) +
                                   "' is not a repository name: use org/name, e.g. "
                                   "mlx-community/Qwen2.5-0.5B-Instruct-4bit");
  }
  return Status::Ok();
}

std::string DefaultUserAgent() { return "modelsync"; }

}  // namespace

class Hub::Impl {
 public:
  explicit Impl(HubOptions options)
      : options_(Normalize(std::move(options))),
        work_(asio::make_work_guard(io_)),
        transport_(options_.transport != nullptr
                       ? options_.transport->Make(io_, options_.max_connections)
                       : MakeCurlTransport(io_, options_.max_connections)),
        limiter_(io_, options_.clock != nullptr ? *options_.clock : *SystemClock::Default(),
                 [this] { WakePaused(); }),
        loop_(io_, *transport_, limiter_, options_,
              options_.clock != nullptr ? *options_.clock : *SystemClock::Default(), Origin()) {
    loop_.release = [this](Request* r) { Release(r); };
    loop_.paused = [this](Request* r) { paused_.insert(r); };
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Impl() {
    asio::post(io_, [this] {
      shutting_down_ = true;
      for (auto& [r, owned] : live_) r->Cancel();
      limiter_.Stop();
      transport_->Shutdown();
      work_.reset();
    });
    thread_.join();
    live_.clear();
  }

  Result<ApiResponse> Get(const std::string& url, const ErrorContext& ctx) {
    auto promise = std::make_shared<std::promise<Result<ApiResponse>>>();
    auto future = promise->get_future();
    const Clock::TimePoint sent = loop_.clock.Now();
    asio::post(io_, [this, url, ctx, promise] {
      auto done = [promise](Result<ApiResponse> r) { promise->set_value(std::move(r)); };
      if (shutting_down_ || stopped_) {
        done(Status::Cancelled("cancelled: " + ctx.Describe()));
        return;
      }
      Start(std::make_unique<ApiRequest>(loop_, ctx, url, done));
    });
    Result<ApiResponse> r = future.get();
    if (r.ok()) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(loop_.clock.Now() - sent);
      const uint64_t took = us.count() > 0 ? static_cast<uint64_t>(us.count()) : 0;
      uint64_t seen = api_round_trip_us_.load();
      while (took > 0 && (seen == 0 || took < seen) &&
             !api_round_trip_us_.compare_exchange_weak(seen, took)) {
      }
    }
    return r;
  }

  Result<FileMetadata> Head(const std::string& url, const ErrorContext& ctx) {
    auto promise = std::make_shared<std::promise<Result<FileMetadata>>>();
    auto future = promise->get_future();
    asio::post(io_, [this, url, ctx, promise] {
      auto done = [promise](Result<FileMetadata> r) { promise->set_value(std::move(r)); };
      if (shutting_down_ || stopped_) {
        done(Status::Cancelled("cancelled: " + ctx.Describe()));
        return;
      }
      Start(std::make_unique<HeadRequest>(loop_, ctx, url, done));
    });
    return future.get();
  }

  uint64_t Fetch(FetchSpec spec, FetchSink* sink) {
    const uint64_t id = next_id_++;
    asio::post(io_, [this, id, spec = std::move(spec), sink]() mutable {
      if (shutting_down_ || stopped_) {
        sink->OnDone(Status::Cancelled("cancelled: fetch of " + spec.path));
        return;
      }
      Status bad = Validate(spec);
      if (!bad.ok()) {
        sink->OnDone(bad);
        return;
      }
      ByteRange r = spec.range.empty() ? ByteRange{0, spec.file_size} : spec.range;
      if (r.empty()) {
        sink->OnDone(Status::Ok());  // nothing to transfer (a zero-byte file)
        return;
      }
      auto req = std::make_unique<FetchRequest>(loop_, id, std::move(spec), sink);
      fetches_[id] = req.get();
      Start(std::move(req));
    });
    return id;
  }

  void Cancel(uint64_t id) {
    asio::post(io_, [this, id] {
      auto it = fetches_.find(id);
      if (it != fetches_.end()) it->second->Cancel();
    });
  }

  void Stop() {
    asio::post(io_, [this] {
      stopped_ = true;
      std::vector<Request*> now;
      for (auto& [r, owned] : live_) now.push_back(r);
      for (Request* r : now) r->Cancel();
    });
  }

  void WakeSinks() {
    asio::post(io_, [this] { WakePaused(); });
  }

  void SetMaxRate(uint64_t bps) {
    asio::post(io_, [this, bps] { limiter_.SetRate(bps); });
  }

  Counters counters() const {
    return Counters{loop_.requests.load(), loop_.body_bytes.load(), loop_.retries.load(),
                    loop_.connections.load(), loop_.clock_checks.load(), api_round_trip_us_.load(),
                    loop_.placed_bytes.load()};
  }

  const HubOptions& options() const { return options_; }

 private:
  static HubOptions Normalize(HubOptions o) {
    o.endpoint = NormalizeEndpoint(o.endpoint.empty() ? kDefaultEndpoint : o.endpoint);
    if (o.user_agent.empty()) o.user_agent = DefaultUserAgent();
    return o;
  }

  std::string Origin() const {
    auto p = ParseUrl(options_.endpoint);
    return p.ok() ? p->Origin() : "";
  }

  Status Validate(const FetchSpec& s) const {
    MS_RETURN_IF_ERROR(CheckRepo(s.repo));
    if (!IsHex(s.commit, 40)) {
      return Status::InvalidArgument("fetch of " + s.repo + ": '" + s.commit.substr(0, 60) +
                                     "' is not a 40-hex commit (files are fetched at a commit, "
                                     "never at a branch)");
    }
    if (Status unsafe = ValidateRepoPath(s.path); !unsafe.ok())
      return unsafe.With("fetch of " + s.repo);
    if (s.range.begin > s.range.end || s.range.end > s.file_size) {
      return Status::InvalidArgument("fetch of " + s.repo + ": " + s.path + ": range " +
                                     ToString(s.range) + " outside the file's " +
                                     std::to_string(s.file_size) + " bytes");
    }
    return Status::Ok();
  }

  void Start(std::unique_ptr<Request> req) {
    Request* r = req.get();
    live_.emplace(r, std::move(req));
    r->Start();
  }

  void Release(Request* r) {
    paused_.erase(r);
    asio::post(io_, [this, r] {
      if (auto* f = dynamic_cast<FetchRequest*>(r)) fetches_.erase(f->id());
      live_.erase(r);
    });
  }

  void WakePaused() {
    std::unordered_set<Request*> now;
    now.swap(paused_);
    for (Request* r : now) {
      if (live_.count(r) == 0) continue;
      // One whose receiver would refuse the bytes at once stays paused: a pause inside the
      // body callback costs libcurl a copy of what it had read.
      if (!r->Ready()) {
        paused_.insert(r);
        continue;
      }
      r->Unpause();
    }
  }

  HubOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<Transport> transport_;  // outlives every request (declared before them)
  RateLimiter limiter_;
  Loop loop_;
  std::unordered_map<Request*, std::unique_ptr<Request>> live_;
  std::unordered_map<uint64_t, FetchRequest*> fetches_;
  std::unordered_set<Request*> paused_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> api_round_trip_us_{0};  // Counters::api_round_trip_us
  bool shutting_down_ = false;
  bool stopped_ = false;  // Stop() was called
  std::thread thread_;
};

Hub::Hub(HubOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Hub::~Hub() = default;

Result<ResolvedRevision> Hub::Resolve(const std::string& repo, const std::string& ref,
                                      const std::function<bool(const std::string&)>& known) {
  const HubOptions& o = impl_->options();
  MS_RETURN_IF_ERROR(CheckRepo(repo));
  if (ref.empty() || ref.size() > 256) {
    return Status::InvalidArgument("revision '" + ref.substr(0, 60) + "' of " + repo +
                                   ": give a branch, tag or 40-hex commit");
  }
  ErrorContext ctx{repo, ref, "", !o.token.empty()};
  if (o.offline) {
    return Status::Offline("HF_HUB_OFFLINE is set: cannot resolve " + ctx.Describe() +
                           " (unset it to reach the hub)");
  }
  const std::string base = o.endpoint + "/api/models/" + repo;
  ResolvedRevision out{repo, ref, "", {}};
  if (IsHex(ref, 40)) {
    out.commit = AsciiLower(ref);
  } else {
    MS_ASSIGN_OR_RETURN(ApiResponse rev,
                        impl_->Get(base + "/revision/" + PercentEncode(ref, false), ctx));
    MS_ASSIGN_OR_RETURN(out.commit, ParseRevisionSha(rev.body, ctx));
  }
  if (known && known(out.commit)) {
    out.listed = false;
    return out;
  }
  ErrorContext tree_ctx{repo, out.commit, "", ctx.has_token};
  std::string url = base + "/tree/" + out.commit + "?recursive=true&expand=false";
  // Pages seen, by the sha256 of their URL (64 bytes each, whatever the URL's length).
  // Memory of a listing: <= kMaxTreeEntries entries + 100,000 x 64 B + one page of <= 64 MiB.
  std::set<std::string> seen_urls;
  while (!url.empty()) {
    if (!seen_urls.insert(Sha256Hex(url)).second || seen_urls.size() > 100000) {
      return Status::Permanent("the file listing of " + tree_ctx.Describe() +
                               " loops or never ends (Link rel=\"next\"): refusing it");
    }
    MS_ASSIGN_OR_RETURN(ApiResponse page, impl_->Get(url, tree_ctx));
    MS_RETURN_IF_ERROR(ParseTreePage(page.body, tree_ctx, &out.files));
    url.clear();
    if (auto link = page.head.Get("link")) {
      std::string next = LinkNext(*link);
      if (next.size() > kMaxNextUrlBytes)
        return Status::Permanent("the file listing of " + tree_ctx.Describe() +
                                 " links its next page with a URL of " +
                                 std::to_string(next.size()) + " bytes: refusing it");
      if (!next.empty()) {
        auto abs = ResolveLocation(page.url, next);
        if (!abs.ok()) return abs.status().With(tree_ctx.Describe());
        url = *abs;
      }
    }
  }
  std::sort(out.files.begin(), out.files.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  for (size_t i = 1; i < out.files.size(); ++i) {
    if (out.files[i].path() == out.files[i - 1].path()) {
      return Status::Permanent("the file listing of " + tree_ctx.Describe() + " lists '" +
                               out.files[i].path() + "' twice: refusing it");
    }
  }
  return out;
}

Result<FileMetadata> Hub::FileInfo(const std::string& repo, const std::string& revision,
                                   const std::string& path) {
  const HubOptions& o = impl_->options();
  MS_RETURN_IF_ERROR(CheckRepo(repo));
  ErrorContext ctx{repo, revision, path, !o.token.empty()};
  if (revision.empty() || !ValidateRepoPath(path).ok()) {
    return Status::InvalidArgument("file info for " + ctx.Describe() +
                                   ": give a revision and a plain relative path");
  }
  if (o.offline) {
    return Status::Offline("HF_HUB_OFFLINE is set: cannot ask the hub about " + ctx.Describe() +
                           " (unset it to reach the hub)");
  }
  return impl_->Head(o.endpoint + "/" + repo + "/resolve/" + PercentEncode(revision, false) + "/" +
                         PercentEncode(path, true),
                     ctx);
}

uint64_t Hub::Fetch(FetchSpec spec, FetchSink* sink) { return impl_->Fetch(std::move(spec), sink); }
void Hub::Cancel(uint64_t fetch_id) { impl_->Cancel(fetch_id); }
void Hub::Stop() { impl_->Stop(); }
void Hub::SetMaxRate(uint64_t bytes_per_second) { impl_->SetMaxRate(bytes_per_second); }
void Hub::WakeSinks() { impl_->WakeSinks(); }
Hub::Counters Hub::counters() const { return impl_->counters(); }

}  // namespace modelsync::net
