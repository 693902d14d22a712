// RepoStore: the fixture repos the emulator serves, loaded from the on-disk format written by
// tools/fixtures (see tools/EMULATOR.md). Commits are immutable; refs can be moved at runtime
// (control API), and Reload() restores everything from disk.
//
// Thread-safe: every method may be called from any connection thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace modelsync::emulator {

struct RepoFile {
  std::string path;
  uint64_t size = 0;
  std::string git_oid;
  std::string lfs_sha256;  // empty: regular file
  uint64_t pointer_size = 0;
  std::string object;  // object id (file name under objects/)
  bool is_lfs() const { return !lfs_sha256.empty(); }
};

struct RepoCommit {
  std::string sha, parent, title, date;
  std::vector<RepoFile> files;            // sorted by path
  std::map<std::string, size_t> by_path;  // path -> index in files
  std::vector<std::string> directories;   // every directory prefix, sorted
  const RepoFile* Find(const std::string& path) const;
  bool IsDirectory(const std::string& path) const;
};

struct Repo {
  std::string id;  // "org/name"
  std::string dir;
  bool gated = false, is_private = false;
  std::map<std::string, std::shared_ptr<const RepoCommit>> commits;
  std::string ObjectPath(const std::string& object) const { return dir + "/objects/" + object; }
};

class RepoStore {
 public:
  explicit RepoStore(std::string root) : root_(std::move(root)) {}

  // (Re)loads every <root>/<org>/<name>/repo.json. Refs moved at runtime are reset.
  Status Reload();

  // nullptr when no such repo.
  std::shared_ptr<const Repo> Find(const std::string& repo_id) const;
  // Resolves a branch, tag, "HEAD" (= main) or full commit sha. nullptr when unknown.
  std::shared_ptr<const RepoCommit> Resolve(const Repo& repo, const std::string& rev) const;
  // Points ref at commit (which must exist in repo). Creates the ref if missing.
  Status MoveRef(const std::string& repo_id, const std::string& ref, const std::string& commit);
  std::map<std::string, std::string> Refs(const std::string& repo_id) const;

 private:
  std::string root_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Repo>> repos_;
  std::map<std::string, std::map<std::string, std::string>> refs_;  // repo -> ref -> sha
};

}  // namespace modelsync::emulator
