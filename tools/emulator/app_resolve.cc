// Routing, file resolution (resolve, resolve-cache) and the CDN listener.
#include <sys/stat.h>

#include <chrono>

#include "emulator/app.h"

namespace modelsync::emulator {

namespace {

const char* kExposeHeaders =
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,"
    "Content-Range,X-Linked-Size,X-Linked-Etag";
const char* kSigningSecret = "modelsync-emulator";

std::string Signature(const std::string& sha256, const std::string& expires) {
  return Sha256HexOf(std::string(kSigningSecret) + ":" + sha256 + ":" + expires).substr(0, 32);
}

std::string JoinDecoded(const std::vector<std::string>& seg, size_t from) {
  std::string out;
  for (size_t i = from; i < seg.size(); ++i) {
    if (i > from) out += '/';
    out += seg[i];
  }
  return PercentDecode(out);
}

Response NotFoundPage() {
  return HubError(404, "", "Sorry, we can't find the page you are looking for.");
}

}  // namespace

Response HubApp::Handle(const Request& req) {
  std::vector<std::string> seg = SplitPath(req.raw_path);
  if (req.listener == Listener::kCdn) return Cdn(req, seg);
  if (seg.empty()) return NotFoundPage();
  if (seg[0] == "_emulator") return Control(req, seg);
  bool get_or_head = req.method == "GET" || req.method == "HEAD";
  if (seg[0] == "api") {
    if (seg.size() >= 2 && seg[1] == "models") return HandleApi(req, seg);
    if (seg.size() >= 7 && seg[1] == "resolve-cache" && seg[2] == "models" && get_or_head) {
      std::string id = PercentDecode(seg[3]) + "/" + PercentDecode(seg[4]);
      auto repo = store_.Find(id);
      if (!repo)
        if (auto r = RenameRedirect(req, id, 3)) return *r;
      if (auto err = CheckRepoVisible(req, repo.get(), id)) return *err;
      return Resolve(req, *repo, PercentDecode(seg[5]), JoinDecoded(seg, 6),
                     ResolveMode::kResolveCache);
    }
    return NotFoundPage();
  }
  if (seg.size() >= 5 && (seg[2] == "resolve" || seg[2] == "raw") && get_or_head) {
    std::string id = PercentDecode(seg[0]) + "/" + PercentDecode(seg[1]);
    auto repo = store_.Find(id);
    if (!repo)
      if (auto r = RenameRedirect(req, id, 0)) return *r;
    if (auto err = CheckRepoVisible(req, repo.get(), id)) return *err;
    return Resolve(req, *repo, PercentDecode(seg[3]), JoinDecoded(seg, 4),
                   seg[2] == "raw" ? ResolveMode::kRaw : ResolveMode::kResolve);
  }
  return NotFoundPage();
}

std::optional<Response> HubApp::RenameRedirect(const Request& req, const std::string& id,
                                               size_t org_segment) {
  std::string to;
  {
    std::lock_guard<std::mutex> l(renames_mu_);
    auto it = renames_.find(id);
    if (it == renames_.end()) return std::nullopt;
    to = it->second;
  }
  std::vector<std::string> seg = SplitPath(req.raw_path);
  std::string loc;
  for (size_t i = 0; i < seg.size(); ++i) {
    if (i == org_segment) {
      loc += "/" + PercentEncode(to, true);
      ++i;  // the name segment is part of the new id
      continue;
    }
    loc += "/" + seg[i];
  }
  if (!req.query.empty()) loc += "?" + req.query;
  Response r;
  r.status = 307;
  r.Header("Location", loc);
  r.Header("Content-Type", "text/plain; charset=utf-8");
  r.body = "Temporary Redirect. Redirecting to " + loc;
  return r;
}

std::optional<Response> HubApp::CheckGate(const Request& req, const Repo& repo) {
  if (!repo.gated || Authorized(req)) return std::nullopt;
  if (!req.has_authorization) {
    return HubError(
        401, "GatedRepo",
        "Access to model " + repo.id +
            " is restricted. You must have access to it and be authenticated to access it. "
            "Please log in.");
  }
  return HubError(403, "GatedRepo",
                  "Access to model " + repo.id +
                      " is restricted and you are not in the authorized list. Visit " +
                      config_.hub_url + "/" + repo.id + " to ask for access.");
}

std::string HubApp::CdnUrl(const Repo& repo, const RepoFile& f) const {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string expires =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count() + 3600);
  return config_.cdn_url + "/repos/" + PercentEncode(repo.id, true) + "/" + f.lfs_sha256 + "/" +
         PercentEncode(f.path, true) + "?response-content-disposition=" +
         PercentEncode("attachment; filename*=UTF-8''" + PercentEncode(f.path, false), false) +
         "&Expires=" + expires + "&Signature=" + Signature(f.lfs_sha256, expires) +
         "&Key-Pair-Id=EMULATORKEY";
}

Response HubApp::Resolve(const Request& req, const Repo& repo, const std::string& rev,
                         const std::string& path, ResolveMode mode) {
  if (auto err = CheckGate(req, repo)) return *err;
  auto c = store_.Resolve(repo, rev);
  if (!c) return HubError(404, "RevisionNotFound", "Invalid rev id: " + rev);
  const RepoFile* f = c->Find(path);
  if (!f) {
    Response r = HubError(404, "EntryNotFound", "Entry not found: " + path + " at " + c->sha);
    r.Header("X-Repo-Commit", c->sha);
    return r;
  }
  Response r;
  r.Header("X-Repo-Commit", c->sha);
  r.Header("Access-Control-Expose-Headers", kExposeHeaders);
  if (f->is_lfs() && mode == ResolveMode::kRaw) {
    // /raw/ of an LFS file is the pointer file itself (PROTOCOL §3, ETag row).
    r.body = "version https://git-lfs.github.com/spec/v1\noid sha256:" + f->lfs_sha256 + "\nsize " +
             std::to_string(f->size) + "\n";
    r.ranged_body = true;
    r.Header("ETag", "\"" + f->git_oid + "\"");
    r.Header("Content-Type", "text/plain; charset=utf-8");
    return r;
  }
  if (f->is_lfs()) {
    std::string url = CdnUrl(repo, *f);
    r.status = 302;
    r.Header("Location", url);
    r.Header("ETag", "\"" + f->git_oid + "\"");
    r.Header("X-Linked-Etag", "\"" + f->lfs_sha256 + "\"");
    r.Header("X-Linked-Size", std::to_string(f->size));
    r.Header("Content-Type", "text/plain; charset=utf-8");
    r.body = "Found. Redirecting to " + url;
    return r;
  }
  if (mode == ResolveMode::kResolve && resolve_cache_.load()) {
    std::string original = "/" + repo.id + "/resolve/" + rev + "/" + path;
    std::string loc = "/api/resolve-cache/models/" + PercentEncode(repo.id, true) + "/" + c->sha +
                      "/" + PercentEncode(path, true) + "?" + PercentEncode(original, false) +
                      "=&etag=" + PercentEncode("\"" + f->git_oid + "\"", false);
    r.status = 307;
    r.Header("Location", loc);
    r.Header("Content-Type", "text/plain; charset=utf-8");
    r.body = "Temporary Redirect. Redirecting to " + loc;
    return r;
  }
  r.Header("ETag", "\"" + f->git_oid + "\"");
  r.Header("Content-Type", "application/octet-stream");
  r.file = repo.ObjectPath(f->object);
  r.file_size = f->size;
  return r;
}

Response HubApp::Cdn(const Request& req, const std::vector<std::string>& seg) {
  auto plain = [](int status, const std::string& code) {
    Response r;
    r.status = status;
    r.Header("Content-Type", "application/xml");
    r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code></Error>";
    return r;
  };
  if (req.method != "GET" && req.method != "HEAD") return plain(405, "MethodNotAllowed");
  if (seg.size() < 5 || seg[0] != "repos") return plain(404, "NoSuchKey");
  std::string id = PercentDecode(seg[1]) + "/" + PercentDecode(seg[2]);
  std::string sha = seg[3];
  auto expires = QueryGet(req.params, "Expires");
  auto sig = QueryGet(req.params, "Signature");
  if (!expires || !sig || *sig != Signature(sha, *expires)) return plain(403, "AccessDenied");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (expires->find_first_not_of("0123456789") != std::string::npos || std::stoll(*expires) < now) {
    return plain(403, "AccessDenied");
  }
  auto repo = store_.Find(id);
  if (!repo) return plain(404, "NoSuchKey");
  std::string file = repo->ObjectPath(sha);
  struct stat st {};
  if (sha.find('/') != std::string::npos || ::stat(file.c_str(), &st) != 0)
    return plain(404, "NoSuchKey");
  Response r;
  r.Header("Content-Type", "application/octet-stream");
  // Like the real CDN, the ETag is not the sha256 (clients must use X-Linked-Etag).
  r.Header("ETag", "\"" + Sha256HexOf("cdn:" + sha) + "\"");
  r.Header("Cache-Control", "public, max-age=604800, immutable");
  r.file = file;
  r.file_size = static_cast<uint64_t>(st.st_size);
  return r;
}

}  // namespace modelsync::emulator
