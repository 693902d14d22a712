#include "support/invariants.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/hash.h"
#include "engine/journal.h"
#include "engine/loadability.h"
#include "engine/model_index.h"

namespace modelsync::testing {
namespace {

namespace fs = std::filesystem;

// Bytes [begin, end) of a file; shorter when the file ends first ("" when unreadable).
std::string ReadRange(const std::string& path, uint64_t begin, uint64_t end) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(begin));
  std::string buf(end - begin, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  buf.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  return buf;
}

HashKind KindOf(const std::string& content_id) {
  return content_id.size() == 64 ? HashKind::kSha256 : HashKind::kGitBlobSha1;
}

std::string ContentId(const modelsync::v1::FileEntry& f) {
  return f.lfs_sha256().empty() ? f.git_oid() : f.lfs_sha256();
}

// 1. Committed ranges of live transfers.
void CheckTransfers(const std::string& root, const engine::State& st, const FixtureDir& fx,
                    std::ostringstream& out) {
  for (const auto& [id, t] : st.transfers) {
    if (t.committed.empty()) continue;
    std::string partial = root + "/.modelsync/partial/" + std::to_string(id);
    std::string object = fx.ObjectPath(t.repo, t.commit, t.path);
    if (object.empty()) {
      out << "transfer " << id << ": " << t.repo << "@" << t.commit << ":" << t.path
          << " is not in the fixture\n";
      continue;
    }
    if (!fs::is_regular_file(partial)) {
      // Adopted into the blob store, BlobVerified not yet committed: the claimed bytes are
      // in the blob (the next run re-hashes it before recording it).
      std::string blob = root + "/.modelsync/blobs/" + t.content_id;
      if (fs::is_regular_file(blob) && HashFileHex(KindOf(t.content_id), blob) == t.content_id)
        partial = blob;
    }
    if (!fs::is_regular_file(partial)) {
      out << "transfer " << id << " (" << t.path << "): the log claims "
          << t.committed.CoveredBytes() << " bytes but " << partial
          << " is missing (and no verified blob " << t.content_id << ")\n";
      continue;
    }
    for (ByteRange r : t.committed.ranges()) {
      std::string got = ReadRange(partial, r.begin, r.end);
      std::string want = ReadRange(object, r.begin, r.end);
      if (want.size() != r.size()) {
        out << "transfer " << id << " (" << t.path << "): range [" << r.begin << ", " << r.end
            << ") lies outside the fixture object\n";
      } else if (got != want) {
        uint64_t at = r.begin;
        while (at - r.begin < got.size() && got[at - r.begin] == want[at - r.begin]) ++at;
        out << "transfer " << id << " (" << t.path << "): committed range [" << r.begin << ", "
            << r.end << ") of " << partial << " differs from the fixture at offset " << at
            << (got.size() < want.size() ? " (the file is short)" : "") << "\n";
      }
    }
  }
}

// 2. Verified blobs.
void CheckBlobs(const std::string& root, const engine::State& st, std::ostringstream& out) {
  for (const auto& [id, size] : st.blobs) {
    std::string path = root + "/.modelsync/blobs/" + id;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      out << "blob " << id << ": the log says verified but " << path << " is missing\n";
      continue;
    }
    uint64_t on_disk = fs::file_size(path, ec);
    if (on_disk != size) {
      out << "blob " << id << ": " << on_disk << " bytes on disk, the log says " << size << "\n";
      continue;
    }
    std::string digest = HashFileHex(KindOf(id), path);
    if (digest != id) out << "blob " << id << ": content hashes to " << digest << "\n";
  }
}

// 3 and 4 for one repo.
void CheckModel(const std::string& root, const engine::RepoState& rs, std::ostringstream& out) {
  std::string dir = root + "/models/" + rs.repo;
  std::string model_id = rs.model_id.empty() ? rs.repo.substr(rs.repo.find('/') + 1) : rs.model_id;
  bool marker = fs::exists(fs::symlink_status(root + "/" + model_id));
  std::error_code ec;
  if (rs.marker && !marker)
    out << "the log says marker " << model_id << " was written but " << root << "/" << model_id
        << " is missing\n";
  if (!fs::is_directory(fs::symlink_status(dir, ec))) {
    if (marker) out << "marker " << model_id << " is present but " << dir << " is missing\n";
    return;
  }
  // Revisions the directory is still consistent with; content ids cached by kind.
  std::set<std::string> candidates;
  for (const auto& [commit, rev] : rs.revisions) candidates.insert(commit);
  std::map<std::string, std::string> first_problem;  // commit -> why it was dropped
  std::set<std::string> present;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& e = *it;
    std::string rel = fs::relative(e.path(), dir).generic_string();
    if (e.is_symlink() || (!e.is_regular_file() && !e.is_directory())) {
      out << dir << "/" << rel << ": not a regular file\n";
      continue;
    }
    if (e.is_directory()) continue;
    present.insert(rel);
    std::map<HashKind, std::string> digest;
    for (const auto& [commit, rev] : rs.revisions) {
      if (!candidates.count(commit)) continue;
      const modelsync::v1::FileEntry* fe = nullptr;
      for (const auto& f : rev.files)
        if (f.path() == rel) fe = &f;
      std::string why;
      if (!fe) {
        why = rel + " is not in the revision";
      } else {
        std::string want = ContentId(*fe);
        HashKind k = KindOf(want);
        if (!digest.count(k)) digest[k] = HashFileHex(k, e.path().string());
        if (digest[k] != want) why = rel + " hashes to " + digest[k] + ", expected " + want;
      }
      if (!why.empty()) {
        candidates.erase(commit);
        first_problem.emplace(commit, why);
      }
    }
  }
  if (ec) out << dir << ": cannot list: " << ec.message() << "\n";
  if (candidates.empty()) {
    out << dir << ": matches no single resolved revision of " << rs.repo << ":";
    for (const auto& [commit, why] : first_problem)
      out << " [" << commit.substr(0, 12) << ": " << why << "]";
    out << "\n";
    return;
  }
  if (!marker) return;
  if (rs.active_commit.empty()) {
    out << "marker " << model_id << " is present but " << rs.repo << " has no active revision\n";
    return;
  }
  if (!candidates.count(rs.active_commit)) return;  // swapped to the next one, not yet active
  for (const auto& [path, content] : rs.materialized)
    if (!present.count(path))
      out << "marker " << model_id << " is present but " << dir << "/" << path << " is missing\n";
}

}  // namespace

std::string CheckRootInvariants(const std::string& root, const FixtureDir& fixture) {
  auto j = engine::Journal::Open(root, true);
  if (!j.ok()) return "cannot open the log read-only: " + j.status().ToString() + "\n";
  const engine::State& st = (*j)->state();
  std::ostringstream out;
  CheckTransfers(root, st, fixture, out);
  CheckBlobs(root, st, out);
  for (const auto& [repo, rs] : st.repos) CheckModel(root, rs, out);
  // 5. One owner per model id, and every marker on disk is the written marker of the repo
  //    that owns its name, whose model passes the loadability rule (issue 13).
  std::map<std::string, std::string> owner;
  for (const auto& [repo, rs] : st.repos) {
    if (rs.model_id.empty()) continue;
    auto [it, fresh] = owner.emplace(rs.model_id, repo);
    if (!fresh) out << "model id " << rs.model_id << " is owned by " << it->second << " and " << repo << "\n";
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || name == "models") continue;
    if (!fs::is_regular_file(fs::symlink_status(e.path())) || fs::file_size(e.path(), ec) != 0) continue;
    auto o = owner.find(name);
    if (o == owner.end()) {
      out << "marker " << name << " is present but no repo owns that model id\n";
      continue;
    }
    // (A marker the log has not recorded yet is the window between the marker's fsync and
    // its MarkerWritten commit: fine when the model it names is complete and loads.)
    const engine::RepoState& rs = st.repos.at(o->second);
    if (rs.active_commit.empty() || rs.materialized.empty()) {
      out << "marker " << name << " is present but " << rs.repo << " has nothing active\n";
    } else {
      auto l = engine::CheckLoadable(root + "/models/" + rs.repo, engine::LoadabilityInputOf(rs));
      if (l.ok() && !l->loadable())
        out << "marker " << name << " is present but " << rs.repo << " does not load: " << l->reason << "\n";
    }
  }
  // Model directories the log knows nothing about.
  for (const auto& org : fs::directory_iterator(root + "/models", ec)) {
    if (!org.is_directory()) continue;
    for (const auto& m : fs::directory_iterator(org.path(), ec)) {
      std::string name = m.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // staging
      std::string repo = org.path().filename().string() + "/" + name;
      if (!st.repos.count(repo))
        out << m.path().string() << ": no repo " << repo << " in the log\n";
    }
  }
  return out.str();
}

std::string CheckModelsIndex(const std::string& root) {
  auto j = engine::Journal::Open(root, true);
  if (!j.ok()) return "cannot open the log read-only: " + j.status().ToString() + "\n";
  std::ifstream in(root + "/.modelsync/models.json");
  if (!in) return "no " + root + "/.modelsync/models.json\n";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string want = engine::ModelsIndexJson((*j)->state());
  if (ss.str() != want) return "models.json differs from the log's view:\n" + ss.str() + "\nwant:\n" + want;
  return "";
}

}  // namespace modelsync::testing
