// hub_emulator over real sockets: revision, tree pagination, paths-info, resolve, CDN,
// ranges, errors, refs, counters, restart.
#include <doctest/doctest.h>

#include <set>

#include "base/fs.h"
#include "base/hash.h"
#include "emulator_env.h"

using namespace modelsync;
using namespace modelsync::testing;
using nlohmann::json;

namespace modelsync::testing {

EmulatorEnv::EmulatorEnv()
    : fixtures([] {
        fixtures::FixtureOptions o;
        o.weights_bytes = 512 << 10;
        o.small_files = 120;
        return o;
      }()),
      emulator({fixtures.path(), kToken, 1000, false, {}}) {
  Status s = emulator.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::abort();
  }
}

EmulatorEnv& EmulatorEnv::Get() {
  static EmulatorEnv env;
  REQUIRE(env.emulator.Reset().ok());
  return env;
}

std::string EmulatorEnv::MainSha(const std::string& repo) const {
  return fixtures.RepoJson(repo)["refs"]["main"].get<std::string>();
}

}  // namespace modelsync::testing

namespace {

std::string ReadAll(const std::string& path) {
  auto r = ReadFile(path);
  REQUIRE(r.ok());
  return *r;
}

json Parse(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), r.body);
  return j;
}

}  // namespace

TEST_CASE("revision endpoint: sha, siblings, blobs=true, %2F revisions, HEAD, errors") {
  auto& env = EmulatorEnv::Get();
  const std::string repo = fixtures::kModelRepo;
  std::string sha = env.MainSha(repo);
  auto r = Http(env.Hub("/api/models/" + repo + "/revision/main"));
  REQUIRE(r.status == 200);
  json j = Parse(r);
  CHECK(j["id"] == repo);
  CHECK(j["sha"] == sha);
  CHECK(j["siblings"].size() == 8);
  CHECK(!j["siblings"][0].contains("blobId"));

  j = Parse(Http(
      env.Hub("/api/models/" + repo + "/revision/main?blobs=true&expand=sha&expand=siblings")));
  bool saw_lfs = false;
  for (const auto& s : j["siblings"]) {
    CHECK(s.contains("size"));
    CHECK(IsHex(s["blobId"].get<std::string>(), 40));
    if (s["rfilename"] == "model.safetensors") {
      saw_lfs = true;
      CHECK(s["lfs"]["sha256"].get<std::string>().size() == 64);
      CHECK(s["lfs"]["size"] == s["size"]);
      CHECK(s["lfs"]["pointerSize"].get<int>() > 100);
    }
    if (s["rfilename"] == ".gitattributes") {
      CHECK(s["size"] == 1519);
      CHECK(s["blobId"] == "a6344aac8c09253b3b630fb776ae94478aa0275b");
    }
  }
  CHECK(saw_lfs);
  CHECK(Parse(Http(env.Hub("/api/models/" + repo)))["sha"] == sha);
  CHECK(Parse(Http(env.Hub("/api/models/" + repo + "/revision/HEAD")))["sha"] == sha);
  CHECK(Parse(Http(env.Hub("/api/models/" + repo + "/revision/" + sha)))["sha"] == sha);

  REQUIRE(env.emulator.MoveRef(repo, "refs/pr/1", sha).ok());
  CHECK(Parse(Http(env.Hub("/api/models/" + repo + "/revision/refs%2Fpr%2F1")))["sha"] == sha);

  r = Http(env.Hub("/api/models/" + repo + "/revision/nope"));
  CHECK(r.status == 404);
  CHECK(r.Header("x-error-code") == "RevisionNotFound");
  CHECK(!r.Header("x-error-message").empty());
  CHECK(Parse(r).contains("error"));
}

TEST_CASE("tree: every page through absolute Link headers, subfolders, expand, EntryNotFound") {
  auto& env = EmulatorEnv::Get();
  REQUIRE(env.emulator.Configure({{"page_size", 7}}).ok());
  std::string url = env.Hub(std::string("/api/models/") + fixtures::kManyFilesRepo +
                            "/tree/main?recursive=true&expand=false");
  std::set<std::string> files, dirs;
  int pages = 0;
  while (!url.empty()) {
    auto r = Http(url);
    REQUIRE(r.status == 200);
    json page = Parse(r);
    CHECK(page.size() <= 7);
    for (const auto& e : page) {
      if (e["type"] == "file") {
        CHECK(files.insert(e["path"].get<std::string>()).second);
        CHECK(IsHex(e["oid"].get<std::string>(), 40));
        CHECK(!e.contains("xetHash"));
      } else {
        CHECK(e["type"] == "directory");
        CHECK(e["size"] == 0);
        dirs.insert(e["path"].get<std::string>());
      }
    }
    ++pages;
    std::string link = r.Header("link");
    url.clear();
    if (!link.empty()) {
      REQUIRE(link.front() == '<');
      url = link.substr(1, link.find('>') - 1);
      CHECK(url.rfind(env.emulator.hub_url() + "/api/", 0) == 0);
      CHECK(url.find("cursor=") != std::string::npos);
      CHECK(link.find("rel=\"next\"") != std::string::npos);
    }
  }
  CHECK(files.size() == 121);  // 120 + .gitattributes
  CHECK(dirs.size() == 10);
  CHECK(pages == (131 + 6) / 7);

  json sub = Parse(
      Http(env.Hub(std::string("/api/models/") + fixtures::kManyFilesRepo + "/tree/main/dir_3")));
  CHECK(!sub.empty());
  for (const auto& e : sub) CHECK(e["path"].get<std::string>().rfind("dir_3/", 0) == 0);

  REQUIRE(env.emulator.Configure({{"page_size", 1000}}).ok());
  json root = Parse(
      Http(env.Hub(std::string("/api/models/") + fixtures::kModelRepo + "/tree/main?expand=true")));
  for (const auto& e : root) {
    CHECK(e.contains("lastCommit"));
    if (e["path"] == "model.safetensors") CHECK(e["lfs"]["oid"].get<std::string>().size() == 64);
  }
  auto r =
      Http(env.Hub(std::string("/api/models/") + fixtures::kModelRepo + "/tree/main/no/such/dir"));
  CHECK(r.status == 404);
  CHECK(r.Header("x-error-code") == "EntryNotFound");
  CHECK(r.Header("x-repo-commit") == env.MainSha(fixtures::kModelRepo));
}

TEST_CASE("paths-info accepts JSON and form bodies") {
  auto& env = EmulatorEnv::Get();
  std::string url =
      env.Hub(std::string("/api/models/") + fixtures::kModelRepo + "/paths-info/main");
  HttpOptions o;
  o.method = "POST";
  o.headers = {"Content-Type: application/json"};
  o.body = R"({"paths":["config.json","missing.txt"],"expand":true})";
  json j = Parse(Http(url, o));
  REQUIRE(j.size() == 1);
  CHECK(j[0]["path"] == "config.json");
  CHECK(j[0].contains("lastCommit"));
  o.headers = {"Content-Type: application/x-www-form-urlencoded"};
  o.body = "paths=config.json&paths=model.safetensors&expand=false";
  j = Parse(Http(url, o));
  REQUIRE(j.size() == 2);
  CHECK(j[1]["lfs"]["oid"].get<std::string>().size() == 64);
}

TEST_CASE("resolve: regular file 200 with ETag, HEAD, resolve-cache 307") {
  auto& env = EmulatorEnv::Get();
  const std::string repo = fixtures::kModelRepo;
  std::string obj = env.fixtures.ObjectPath(repo, "main", "config.json");
  std::string content = ReadAll(obj);
  auto r = Http(env.Hub("/" + repo + "/resolve/main/config.json"));
  REQUIRE(r.status == 200);
  CHECK(r.body == content);
  CHECK(r.Header("etag") == "\"" + GitBlobSha1Hex(content) + "\"");
  CHECK(r.Header("x-repo-commit") == env.MainSha(repo));
  CHECK(r.Header("accept-ranges") == "bytes");
  HttpOptions head;
  head.method = "HEAD";
  r = Http(env.Hub("/" + repo + "/resolve/main/config.json"), head);
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(r.Header("content-length") == std::to_string(content.size()));

  REQUIRE(env.emulator.Configure({{"resolve_cache", true}}).ok());
  r = Http(env.Hub("/" + repo + "/resolve/main/config.json"), head);
  REQUIRE(r.status == 307);
  std::string loc = r.Header("location");
  CHECK(loc.rfind("/api/resolve-cache/models/" + repo + "/" + env.MainSha(repo) + "/config.json?",
                  0) == 0);
  r = Http(env.Hub(loc));  // Swift keeps the query
  CHECK(r.status == 200);
  CHECK(r.body == content);
  r = Http(env.Hub(loc.substr(0, loc.find('?'))), head);  // Python drops it
  CHECK(r.status == 200);
  CHECK(r.Header("etag") == "\"" + GitBlobSha1Hex(content) + "\"");
  CHECK(r.Header("x-repo-commit") == env.MainSha(repo));
}

TEST_CASE("resolve: LFS 302 to the CDN host; CDN serves bytes, own ETag, checks signature") {
  auto& env = EmulatorEnv::Get();
  const std::string repo = fixtures::kModelRepo;
  std::string content = ReadAll(env.fixtures.ObjectPath(repo, "main", "model.safetensors"));
  std::string sha256 = Sha256Hex(content);
  auto r =
      Http(env.Hub("/" + repo + "/resolve/main/model.safetensors"), HttpOptions().Method("HEAD"));
  REQUIRE(r.status == 302);
  CHECK(r.Header("x-linked-etag") == "\"" + sha256 + "\"");
  CHECK(r.Header("x-linked-size") == std::to_string(content.size()));
  CHECK(r.Header("x-repo-commit") == env.MainSha(repo));
  std::string loc = r.Header("location");
  CHECK(loc.rfind(env.emulator.cdn_url() + "/", 0) == 0);
  CHECK(env.emulator.cdn_url().find("127.0.0.2") != std::string::npos);
  CHECK(loc.find("Signature=") != std::string::npos);

  r = Http(loc);
  REQUIRE(r.status == 200);
  CHECK(Sha256Hex(r.body) == sha256);
  CHECK(r.Header("etag") != "\"" + sha256 + "\"");
  CHECK(r.Header("accept-ranges") == "bytes");

  r = Http(env.Hub("/" + repo + "/resolve/main/model.safetensors"), HttpOptions().Follow());
  CHECK(r.status == 200);
  CHECK(r.body == content);

  std::string unsigned_url = loc.substr(0, loc.find('?'));
  CHECK(Http(unsigned_url).status == 403);
  std::string tampered = loc;
  tampered[tampered.find("Signature=") + 10] ^= 1;
  CHECK(Http(tampered).status == 403);
}

TEST_CASE("ranges: a-b, a-, -n, 0-0, 416") {
  auto& env = EmulatorEnv::Get();
  const std::string repo = fixtures::kModelRepo;
  std::string content = ReadAll(env.fixtures.ObjectPath(repo, "main", "model.safetensors"));
  std::string loc =
      Http(env.Hub("/" + repo + "/resolve/main/model.safetensors")).Header("location");
  std::string total = std::to_string(content.size());
  struct Case {
    std::string range, want_cr;
    size_t off, len;
  };
  size_t n = content.size();
  for (const Case& c :
       {Case{"bytes=0-0", "bytes 0-0/" + total, 0, 1},
        Case{"bytes=100-199", "bytes 100-199/" + total, 100, 100},
        Case{"bytes=1000-", "bytes 1000-" + std::to_string(n - 1) + "/" + total, 1000, n - 1000},
        Case{"bytes=-10",
             "bytes " + std::to_string(n - 10) + "-" + std::to_string(n - 1) + "/" + total, n - 10,
             10},
        Case{"bytes=10-99999999", "bytes 10-" + std::to_string(n - 1) + "/" + total, 10, n - 10}}) {
    CAPTURE(c.range);
    auto r = Http(loc, HttpOptions().Header("Range: " + c.range));
    CHECK(r.status == 206);
    CHECK(r.Header("content-range") == c.want_cr);
    CHECK(r.body == content.substr(c.off, c.len));
  }
  auto r = Http(loc, HttpOptions().Header("Range: bytes=" + total + "-"));
  CHECK(r.status == 416);
  CHECK(r.Header("content-range") == "bytes */" + total);
  // Regular files on the hub take ranges too.
  r = Http(env.Hub("/" + repo + "/resolve/main/config.json"),
           HttpOptions().Header("Range: bytes=2-5"));
  CHECK(r.status == 206);
  CHECK(r.body.size() == 4);
}

TEST_CASE("errors: RepoNotFound, private, gated 401/403, EntryNotFound") {
  auto& env = EmulatorEnv::Get();
  auto check = [](const HttpResponse& r, long status, const std::string& code) {
    CHECK(r.status == status);
    CHECK(r.Header("x-error-code") == code);
    CHECK(!r.Header("x-error-message").empty());
    auto j = json::parse(r.body, nullptr, false);
    CHECK((!j.is_discarded() && j.contains("error")));
  };
  check(Http(env.Hub("/api/models/nobody/nothing/revision/main")), 401, "RepoNotFound");
  check(Http(env.Hub("/nobody/nothing/resolve/main/config.json")), 401, "RepoNotFound");
  std::string priv = fixtures::kPrivateRepo;
  check(Http(env.Hub("/api/models/" + priv + "/revision/main")), 401, "RepoNotFound");
  check(Http(env.Hub("/api/models/" + priv + "/revision/main"),
             HttpOptions().Header("Authorization: Bearer hf_other")),
        401, "RepoNotFound");
  CHECK(Http(env.Hub("/api/models/" + priv + "/revision/main"),
             HttpOptions().Header(std::string("Authorization: Bearer ") + kToken))
            .status == 200);
  std::string gated = fixtures::kGatedRepo;
  CHECK(Http(env.Hub("/api/models/" + gated + "/revision/main")).status == 200);
  check(Http(env.Hub("/" + gated + "/resolve/main/config.json")), 401, "GatedRepo");
  check(Http(env.Hub("/" + gated + "/resolve/main/config.json"),
             HttpOptions().Header("Authorization: Bearer hf_other")),
        403, "GatedRepo");
  CHECK(Http(env.Hub("/" + gated + "/resolve/main/config.json"),
             HttpOptions().Header(std::string("Authorization: Bearer ") + kToken))
            .status == 200);
  auto r = Http(env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/main/nope.bin"));
  check(r, 404, "EntryNotFound");
  CHECK(r.Header("x-repo-commit") == env.MainSha(fixtures::kModelRepo));
  check(Http(env.Hub(std::string("/") + fixtures::kModelRepo + "/resolve/nope/config.json")), 404,
        "RevisionNotFound");
}

TEST_CASE("refs move at runtime; reset restores them") {
  auto& env = EmulatorEnv::Get();
  const std::string repo = fixtures::kVersionsRepo;
  json rj = env.fixtures.RepoJson(repo);
  std::string v1 = rj["refs"]["v1"], v2 = rj["refs"]["main"];
  CHECK(v1 != v2);
  CHECK(Parse(Http(env.Hub("/api/models/" + repo + "/revision/v1")))["sha"] == v1);
  REQUIRE(env.emulator.MoveRef(repo, "main", v1).ok());
  CHECK(Parse(Http(env.Hub("/api/models/" + repo + "/revision/main")))["sha"] == v1);
  CHECK(Http(env.Hub("/" + repo + "/resolve/main/notes.txt")).status == 200);
  CHECK(!env.emulator.MoveRef(repo, "main", std::string(40, '0')).ok());
  REQUIRE(env.emulator.Reset().ok());
  CHECK(Parse(Http(env.Hub("/api/models/" + repo + "/revision/main")))["sha"] == v2);
  CHECK(Http(env.Hub("/" + repo + "/resolve/main/notes.txt")).status == 404);
}

TEST_CASE("counters: Authorization reaches the hub, not the CDN; the token is never logged") {
  auto& env = EmulatorEnv::Get();
  const std::string repo = fixtures::kModelRepo;
  // libcurl does not forward a custom Authorization header to another host on redirect.
  auto r = Http(env.Hub("/" + repo + "/resolve/main/model.safetensors"),
                HttpOptions().Header(std::string("Authorization: Bearer ") + kToken).Follow());
  REQUIRE(r.status == 200);
  auto stats = env.emulator.Stats();
  REQUIRE(stats.ok());
  CHECK((*stats)["hub"]["requests"] == 1);
  CHECK((*stats)["hub"]["authorization_seen"] == true);
  CHECK((*stats)["cdn"]["requests"] == 1);
  CHECK((*stats)["cdn"]["authorization_seen"] == false);
  CHECK((*stats)["cdn"]["body_bytes"] == r.body.size());
  auto log = env.emulator.Log();
  REQUIRE(log.ok());
  REQUIRE(log->size() == 2);
  // Entries are logged when their response has been sent: the hub's 302 can be logged after
  // the CDN's answer to the redirect it caused (seen under load), so each is found by listener.
  const bool hub_first = (*log)[0]["listener"] == "hub";
  const auto& hub = (*log)[hub_first ? 0 : 1];
  const auto& cdn = (*log)[hub_first ? 1 : 0];
  CHECK(hub["listener"] == "hub");
  CHECK(hub["status"] == 302);
  CHECK(hub["authorization"] == true);
  CHECK(cdn["listener"] == "cdn");
  CHECK(cdn["authorization"] == false);
  CHECK(log->dump().find(kToken) == std::string::npos);
  CHECK(stats->dump().find(kToken) == std::string::npos);
}

TEST_CASE("stop and start again on the same ports") {
  auto& env = EmulatorEnv::Get();
  std::string hub = env.emulator.hub_url(), cdn = env.emulator.cdn_url();
  env.emulator.Stop();
  auto r = Http(env.Hub(std::string("/api/models/") + fixtures::kModelRepo),
                HttpOptions().Timeout(2000));
  CHECK(r.curl_code != 0);
  REQUIRE(env.emulator.Start().ok());
  CHECK(env.emulator.hub_url() == hub);
  CHECK(env.emulator.cdn_url() == cdn);
  CHECK(Http(env.Hub(std::string("/api/models/") + fixtures::kModelRepo)).status == 200);
}

TEST_CASE("renamed repo: relative 307 to the new name; /raw/ serves LFS pointers") {
  auto& env = EmulatorEnv::Get();
  REQUIRE(env.emulator.Configure({{"renames", {{"old-org/old-name", fixtures::kModelRepo}}}}).ok());
  auto r = Http(env.Hub("/api/models/old-org/old-name/revision/main?blobs=true"));
  CHECK(r.status == 307);
  CHECK(r.Header("location") ==
        std::string("/api/models/") + fixtures::kModelRepo + "/revision/main?blobs=true");
  r = Http(env.Hub("/old-org/old-name/resolve/main/config.json"), HttpOptions().Method("HEAD"));
  CHECK(r.status == 307);
  CHECK(r.Header("location") ==
        std::string("/") + fixtures::kModelRepo + "/resolve/main/config.json");
  r = Http(env.Hub("/old-org/old-name/resolve/main/config.json"), HttpOptions().Follow());
  CHECK(r.status == 200);

  json files = env.fixtures.RepoJson(
      fixtures::kModelRepo)["commits"][env.MainSha(fixtures::kModelRepo)]["files"];
  for (const auto& f : files) {
    if (f["path"] != "model.safetensors") continue;
    r = Http(env.Hub(std::string("/") + fixtures::kModelRepo + "/raw/main/model.safetensors"));
    CHECK(r.status == 200);
    CHECK(r.body ==
          fixtures::LfsPointer(f["lfs_sha256"].get<std::string>(), f["size"].get<uint64_t>()));
    CHECK(r.Header("etag") == "\"" + f["git_oid"].get<std::string>() + "\"");
    r = Http(env.Hub(std::string("/") + fixtures::kModelRepo + "/raw/main/model.safetensors"),
             HttpOptions().Header("Range: bytes=0-0"));
    CHECK(r.status == 206);
    CHECK(r.body == "v");
  }
}
