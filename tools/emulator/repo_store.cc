#include "emulator/repo_store.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fs.h"

namespace modelsync::emulator {

namespace fs = std::filesystem;

const RepoFile* RepoCommit::Find(const std::string& path) const {
  auto it = by_path.find(path);
  return it == by_path.end() ? nullptr : &files[it->second];
}

bool RepoCommit::IsDirectory(const std::string& path) const {
  return std::binary_search(directories.begin(), directories.end(), path);
}

namespace {

Result<std::shared_ptr<Repo>> LoadRepo(const std::string& dir, const std::string& id,
                                       std::map<std::string, std::string>* refs) {
  std::string path = dir + "/repo.json";
  MS_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + ": not a JSON object");
  auto repo = std::make_shared<Repo>();
  repo->id = id;
  repo->dir = dir;
  try {
    repo->gated = j.value("gated", false);
    repo->is_private = j.value("private", false);
    for (auto& [sha, cj] : j.at("commits").items()) {
      auto c = std::make_shared<RepoCommit>();
      c->sha = sha;
      c->parent =
          cj.value("parent", nlohmann::json()).is_string() ? cj["parent"].get<std::string>() : "";
      c->title = cj.value("title", "");
      c->date = cj.value("date", "2024-09-18T00:00:00.000Z");
      std::set<std::string> dirs;
      for (auto& fj : cj.at("files")) {
        RepoFile f;
        f.path = fj.at("path").get<std::string>();
        f.size = fj.at("size").get<uint64_t>();
        f.git_oid = fj.at("git_oid").get<std::string>();
        f.object = fj.at("object").get<std::string>();
        f.lfs_sha256 = fj.value("lfs_sha256", "");
        f.pointer_size = fj.value("pointer_size", uint64_t{0});
        for (size_t p = f.path.find('/'); p != std::string::npos; p = f.path.find('/', p + 1)) {
          if (p > 0) dirs.insert(f.path.substr(0, p));
        }
        c->files.push_back(std::move(f));
      }
      std::sort(c->files.begin(), c->files.end(),
                [](const RepoFile& a, const RepoFile& b) { return a.path < b.path; });
      for (size_t i = 0; i < c->files.size(); ++i) c->by_path[c->files[i].path] = i;
      c->directories.assign(dirs.begin(), dirs.end());
      repo->commits[sha] = std::move(c);
    }
    *refs = j.at("refs").get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  return repo;
}

}  // namespace

Status RepoStore::Reload() {
  std::map<std::string, std::shared_ptr<const Repo>> repos;
  std::map<std::string, std::map<std::string, std::string>> refs;
  std::error_code ec;
  for (const auto& org : fs::directory_iterator(root_, ec)) {
    if (!org.is_directory()) continue;
    for (const auto& name : fs::directory_iterator(org.path(), ec)) {
      if (!fs::exists(name.path() / "repo.json")) continue;
      std::string id = org.path().filename().string() + "/" + name.path().filename().string();
      std::map<std::string, std::string> r;
      MS_ASSIGN_OR_RETURN(auto repo, LoadRepo(name.path().string(), id, &r));
      repos[id] = std::move(repo);
      refs[id] = std::move(r);
    }
  }
  if (ec) return Status::IOError("cannot list repos directory " + root_ + ": " + ec.message());
  std::lock_guard<std::mutex> l(mu_);
  repos_ = std::move(repos);
  refs_ = std::move(refs);
  return Status::Ok();
}

std::shared_ptr<const Repo> RepoStore::Find(const std::string& repo_id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = repos_.find(repo_id);
  return it == repos_.end() ? nullptr : it->second;
}

std::shared_ptr<const RepoCommit> RepoStore::Resolve(const Repo& repo,
                                                     const std::string& rev) const {
  std::string sha;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto rit = refs_.find(repo.id);
    if (rit != refs_.end()) {
      auto it = rit->second.find(rev == "HEAD" ? "main" : rev);
      if (it != rit->second.end()) sha = it->second;
    }
  }
  if (sha.empty()) sha = rev;
  auto it = repo.commits.find(sha);
  if (it != repo.commits.end()) return it->second;
  // A unique prefix of 7+ hex digits names its commit, as on the Hub (huggingface_hub#197).
  if (rev.size() < 7 || rev.size() >= 40 ||
      rev.find_first_not_of("0123456789abcdef") != std::string::npos)
    return nullptr;
  std::shared_ptr<const RepoCommit> found;
  for (const auto& [full, commit] : repo.commits) {
    if (full.rfind(rev, 0) != 0) continue;
    if (found) return nullptr;  // ambiguous: the Hub answers 404 too
    found = commit;
  }
  return found;
}

Status RepoStore::MoveRef(const std::string& repo_id, const std::string& ref,
                          const std::string& commit) {
  auto repo = Find(repo_id);
  if (!repo) return Status::NotFound("no repo " + repo_id);
  if (!repo->commits.count(commit))
    return Status::NotFound("no commit " + commit + " in " + repo_id);
  std::lock_guard<std::mutex> l(mu_);
  refs_[repo_id][ref] = commit;
  return Status::Ok();
}

std::map<std::string, std::string> RepoStore::Refs(const std::string& repo_id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = refs_.find(repo_id);
  return it == refs_.end() ? std::map<std::string, std::string>{} : it->second;
}

}  // namespace modelsync::emulator
