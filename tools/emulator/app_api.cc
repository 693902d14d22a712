// The JSON API routes: model info / revision, tree listing with pagination, paths-info.
#include <algorithm>

#include "base/hash.h"
#include "emulator/app.h"

namespace modelsync::emulator {

namespace {

std::string JoinSegments(const std::vector<std::string>& seg, size_t from) {
  std::string out;
  for (size_t i = from; i < seg.size(); ++i) {
    if (i > from) out += '/';
    out += seg[i];
  }
  return out;
}

bool Truthy(const std::optional<std::string>& v) {
  return v && (*v == "true" || *v == "1" || *v == "True");
}

}  // namespace

HubApp::HubApp(AppConfig config)
    : config_(std::move(config)),
      page_size_(config_.page_size),
      resolve_cache_(config_.resolve_cache),
      store_(config_.repos_dir) {}

void HubApp::SetUrls(std::string hub, std::string cdn) {
  config_.hub_url = std::move(hub);
  config_.cdn_url = std::move(cdn);
}

Response HubError(int status, const std::string& code, const std::string& message) {
  Response r = JsonResponse(status, {{"error", message}});
  if (!code.empty()) r.Header("X-Error-Code", code);
  r.Header("X-Error-Message", message);
  return r;
}

Response JsonResponse(int status, const nlohmann::json& j) {
  Response r;
  r.status = status;
  r.body = j.dump();
  r.Header("Content-Type", "application/json; charset=utf-8");
  return r;
}

nlohmann::json TreeEntry(const RepoCommit& c, const RepoFile& f, bool expand) {
  nlohmann::json e = {{"type", "file"}, {"oid", f.git_oid}, {"size", f.size}, {"path", f.path}};
  if (f.is_lfs())
    e["lfs"] = {{"oid", f.lfs_sha256}, {"size", f.size}, {"pointerSize", f.pointer_size}};
  if (expand) {
    e["lastCommit"] = {{"id", c.sha}, {"title", c.title}, {"date", c.date}};
    e["securityFileStatus"] = {{"status", "safe"}};
  }
  return e;
}

nlohmann::json DirectoryEntry(const RepoCommit& c, const std::string& dir, bool expand) {
  nlohmann::json e = {{"type", "directory"},
                      {"oid", GitBlobSha1Hex(c.sha + "/" + dir)},
                      {"size", 0},
                      {"path", dir}};
  if (expand) e["lastCommit"] = {{"id", c.sha}, {"title", c.title}, {"date", c.date}};
  return e;
}

std::optional<Response> HubApp::CheckRepoVisible(const Request& req, const Repo* repo,
                                                 const std::string& id) {
  if (repo && !(repo->is_private && !Authorized(req))) return std::nullopt;
  std::string msg =
      "Repository not found: " + id +
      ". Check the name; if the repository is private, pass a token that can read it.";
  return HubError(401, "RepoNotFound", msg);
}

Response HubApp::HandleApi(const Request& req, const std::vector<std::string>& seg) {
  if (seg.size() < 4)
    return HubError(404, "", "Sorry, we can't find the page you are looking for.");
  std::string id = PercentDecode(seg[2]) + "/" + PercentDecode(seg[3]);
  auto repo = store_.Find(id);
  if (!repo)
    if (auto r = RenameRedirect(req, id, 2)) return *r;
  if (auto err = CheckRepoVisible(req, repo.get(), id)) return *err;
  std::string op = seg.size() > 4 ? seg[4] : "";
  if (op.empty() && (req.method == "GET" || req.method == "HEAD"))
    return ModelInfo(req, *repo, "main");
  if (seg.size() >= 6) {
    if (op == "revision" && (req.method == "GET" || req.method == "HEAD")) {
      return ModelInfo(req, *repo, PercentDecode(JoinSegments(seg, 5)));
    }
    if (op == "tree" && req.method == "GET") {
      return Tree(req, *repo, PercentDecode(seg[5]), PercentDecode(JoinSegments(seg, 6)));
    }
    if (op == "paths-info" && req.method == "POST")
      return PathsInfo(req, *repo, PercentDecode(seg[5]));
  }
  return HubError(404, "", "Sorry, we can't find the page you are looking for.");
}

Response HubApp::ModelInfo(const Request& req, const Repo& repo, const std::string& rev) {
  auto c = store_.Resolve(repo, rev);
  if (!c) return HubError(404, "RevisionNotFound", "Invalid rev id: " + rev);
  bool blobs = Truthy(QueryGet(req.params, "blobs"));
  nlohmann::json siblings = nlohmann::json::array();
  for (const RepoFile& f : c->files) {
    nlohmann::json s = {{"rfilename", f.path}};
    if (blobs) {
      s["size"] = f.size;
      s["blobId"] = f.git_oid;
      if (f.is_lfs())
        s["lfs"] = {{"sha256", f.lfs_sha256}, {"size", f.size}, {"pointerSize", f.pointer_size}};
    }
    siblings.push_back(std::move(s));
  }
  std::string author = repo.id.substr(0, repo.id.find('/'));
  nlohmann::json j = {{"_id", GitBlobSha1Hex(repo.id).substr(0, 24)},
                      {"id", repo.id},
                      {"modelId", repo.id},
                      {"author", author},
                      {"sha", c->sha},
                      {"lastModified", c->date},
                      {"createdAt", "2024-09-18T00:00:00.000Z"},
                      {"private", repo.is_private},
                      {"gated", repo.gated ? nlohmann::json("manual") : nlohmann::json(false)},
                      {"disabled", false},
                      {"library_name", "mlx"},
                      {"pipeline_tag", "text-generation"},
                      {"tags", {"mlx", "safetensors", "text-generation"}},
                      {"downloads", 0},
                      {"likes", 0},
                      {"siblings", siblings}};
  return JsonResponse(200, j);
}

Response HubApp::Tree(const Request& req, const Repo& repo, const std::string& rev,
                      const std::string& sub) {
  auto c = store_.Resolve(repo, rev);
  if (!c) return HubError(404, "RevisionNotFound", "Invalid rev id: " + rev);
  if (!sub.empty() && !c->IsDirectory(sub)) {
    Response r =
        HubError(404, "EntryNotFound", "Entry not found: " + sub + " is not a folder at " + c->sha);
    r.Header("X-Repo-Commit", c->sha);
    return r;
  }
  bool recursive = Truthy(QueryGet(req.params, "recursive"));
  bool expand = Truthy(QueryGet(req.params, "expand"));
  std::string prefix = sub.empty() ? "" : sub + "/";
  auto wanted = [&](const std::string& p) {
    if (p.size() <= prefix.size() || p.compare(0, prefix.size(), prefix) != 0) return false;
    return recursive || p.find('/', prefix.size()) == std::string::npos;
  };
  // (path, is_dir) merged in path order.
  std::vector<std::pair<std::string, const RepoFile*>> rows;
  for (const std::string& d : c->directories)
    if (wanted(d)) rows.emplace_back(d, nullptr);
  for (const RepoFile& f : c->files)
    if (wanted(f.path)) rows.emplace_back(f.path, &f);
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  size_t page = std::max<size_t>(1, page_size_.load());
  if (expand) page = std::min<size_t>(page, 50);
  size_t offset = 0;
  if (auto cursor = QueryGet(req.params, "cursor")) {
    if (cursor->size() < 2 || (*cursor)[0] != 'o' ||
        cursor->find_first_not_of("0123456789", 1) != std::string::npos) {
      return HubError(400, "", "Invalid cursor");
    }
    offset = std::stoull(cursor->substr(1));
  }
  nlohmann::json out = nlohmann::json::array();
  size_t end = std::min(rows.size(), offset + page);
  for (size_t i = offset; i < end; ++i) {
    out.push_back(rows[i].second ? TreeEntry(*c, *rows[i].second, expand)
                                 : DirectoryEntry(*c, rows[i].first, expand));
  }
  Response r = JsonResponse(200, out);
  if (end < rows.size()) {
    std::string q;
    for (std::string_view rest = req.query; !rest.empty();) {
      size_t amp = rest.find('&');
      std::string_view part = rest.substr(0, amp);
      if (!part.empty() && part.substr(0, 7) != "cursor=") q += std::string(part) + "&";
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
    q += "cursor=o" + std::to_string(end);
    r.Header("Link", "<" + config_.hub_url + req.raw_path + "?" + q + ">; rel=\"next\"");
  }
  return r;
}

Response HubApp::PathsInfo(const Request& req, const Repo& repo, const std::string& rev) {
  auto c = store_.Resolve(repo, rev);
  if (!c) return HubError(404, "RevisionNotFound", "Invalid rev id: " + rev);
  std::vector<std::string> paths;
  bool expand = false;
  if (req.content_type.find("json") != std::string::npos) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return HubError(400, "", "Invalid JSON body");
    if (j.contains("paths")) {
      if (j["paths"].is_string()) paths.push_back(j["paths"].get<std::string>());
      if (j["paths"].is_array())
        for (auto& p : j["paths"])
          if (p.is_string()) paths.push_back(p.get<std::string>());
    }
    if (j.contains("expand"))
      expand = j["expand"].is_boolean() ? j["expand"].get<bool>() : j["expand"] == "true";
  } else {
    for (const auto& [k, v] : ParseQuery(req.body)) {
      if (k == "paths" || k == "paths[]") paths.push_back(v);
      if (k == "expand") expand = v == "true" || v == "1" || v == "True";
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& p : paths) {
    if (const RepoFile* f = c->Find(p)) {
      out.push_back(TreeEntry(*c, *f, expand));
    } else if (c->IsDirectory(p)) {
      out.push_back(DirectoryEntry(*c, p, expand));
    }
  }
  return JsonResponse(200, out);
}

}  // namespace modelsync::emulator
