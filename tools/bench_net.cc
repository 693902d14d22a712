// bench_net: modelsync's hub client against `curl -o /dev/null` on the same file, in one run,
// alternating, against a running hub (normally the emulator; see tools/bench_net.sh).
//
//   bench_net --endpoint http://127.0.0.1:PORT --repo org/name --path model.safetensors
//             [--revision main] [--rounds 3]
//
// The client fetches through the hub's resolve URL (one small 302 to the CDN listener, then
// the body); curl gets the CDN URL the 302 pointed to. Prints each round and the ratio of
// the best rates (client / curl).
#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "net/hub.h"

namespace {

using modelsync::Status;
using modelsync::net::FetchSink;
using modelsync::net::FetchSpec;
using modelsync::net::Hub;

class DiscardSink : public FetchSink {
 public:
  Status OnData(uint64_t, const char*, size_t n) override {
    bytes_ += n;
    return Status::Ok();
  }
  void OnDone(Status s) override {
    std::lock_guard<std::mutex> l(mu_);
    status_ = std::move(s);
    done_ = true;
    cv_.notify_all();
  }
  Status Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return done_; });
    return status_;
  }
  uint64_t bytes_ = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status status_;
};

size_t Ignore(char*, size_t size, size_t n, void*) { return size * n; }

// The Location of the resolve URL (the CDN URL for an LFS file), or the URL itself.
std::string CdnUrl(const std::string& resolve_url) {
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, resolve_url.c_str());
  curl_easy_setopt(c, CURLOPT_RANGE, "0-0");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Ignore);
  curl_easy_perform(c);
  char* loc = nullptr;
  curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
  std::string out = loc != nullptr ? loc : resolve_url;
  curl_easy_cleanup(c);
  return out;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_net: modelsync hub client vs curl on one file"};
  std::string endpoint, repo, path, revision = "main";
  int rounds = 3;
  app.add_option("--endpoint", endpoint, "hub base URL")->required();
  app.add_option("--repo", repo, "org/name")->required();
  app.add_option("--path", path, "file in the repo")->required();
  app.add_option("--revision", revision, "branch, tag or commit");
  app.add_option("--rounds", rounds, "alternating rounds");
  CLI11_PARSE(app, argc, argv);

  modelsync::net::HubOptions opts;
  opts.endpoint = endpoint;
  Hub hub(opts);
  auto rev = hub.Resolve(repo, revision);
  if (!rev.ok()) {
    std::fprintf(stderr, "resolve: %s\n", rev.status().ToString().c_str());
    return 1;
  }
  FetchSpec spec;
  for (const auto& f : rev->files) {
    if (f.path() == path) {
      spec = FetchSpec{repo, rev->commit, path, f.size(), f.git_oid(), f.lfs_sha256(), {}};
    }
  }
  if (spec.path.empty()) {
    std::fprintf(stderr, "%s not in %s@%s\n", path.c_str(), repo.c_str(), revision.c_str());
    return 1;
  }
  const std::string cdn = CdnUrl(endpoint + "/" + repo + "/resolve/" + rev->commit + "/" + path);
  std::printf("file %s: %llu bytes\ncdn url: %s\n", path.c_str(),
              static_cast<unsigned long long>(spec.file_size),
              cdn.substr(0, cdn.find('?')).c_str());

  double best_client = 0, best_curl = 0;
  std::vector<double> client_rates, curl_rates;
  const double mib = static_cast<double>(spec.file_size) / (1 << 20);
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    std::string cmd = "curl -s -f -o /dev/null '" + cdn + "'";
    int rc = std::system(cmd.c_str());
    double curl_s = Seconds(std::chrono::steady_clock::now() - t0);
    if (rc != 0) {
      std::fprintf(stderr, "curl failed (%d)\n", rc);
      return 1;
    }
    DiscardSink sink;
    t0 = std::chrono::steady_clock::now();
    hub.Fetch(spec, &sink);
    Status s = sink.Wait();
    double client_s = Seconds(std::chrono::steady_clock::now() - t0);
    if (!s.ok() || sink.bytes_ != spec.file_size) {
      std::fprintf(stderr, "client fetch failed: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("round %d: curl %.3f s (%.0f MiB/s), modelsync %.3f s (%.0f MiB/s)\n", r + 1,
                curl_s, mib / curl_s, client_s, mib / client_s);
    best_curl = std::max(best_curl, mib / curl_s);
    curl_rates.push_back(mib / curl_s);
    client_rates.push_back(mib / client_s);
    best_client = std::max(best_client, mib / client_s);
  }
  std::printf("best: curl %.0f MiB/s, modelsync %.0f MiB/s, ratio modelsync/curl = %.3f\n",
              best_curl, best_client, best_client / best_curl);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("median: curl %.0f MiB/s, modelsync %.0f MiB/s, ratio modelsync/curl = %.3f\n",
              median(curl_rates), median(client_rates), median(client_rates) / median(curl_rates));
  return 0;
}
