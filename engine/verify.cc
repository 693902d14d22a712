// Verify (recovery.h): re-hash every file of each active revision against its content id.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "engine/event_builders.h"
#include "engine/file_hash.h"
#include "engine/layout.h"
#include "engine/loadability.h"
#include "engine/repo_path.h"
#include "engine/planner.h"
#include "engine/recovery.h"
#include "engine/recovery_util.h"
#include "storage/blob_store.h"

namespace modelsync::engine {
namespace {

struct Job {
  std::string repo, path, content_id;
  std::string dir;  // root-relative directory holding the files (models/<org>/<name>)
  uint64_t size = 0;
};

// Regular files, symlinks and others below dir (never followed: a symlinked directory is
// listed as an entry, not entered), relative to it with `prefix`.
void ListTree(storage::Dir& dir, const std::string& prefix, size_t depth,
              std::set<std::string>* out) {
  auto names = dir.List();
  if (!names.ok()) return;
  for (const auto& n : *names) {
    const std::string rel = prefix.empty() ? n : prefix + "/" + n;
    auto info = dir.Stat(n);
    if (info.ok() && info->type == storage::FileInfo::Type::kDir && depth < kMaxPathDepth) {
      if (auto sub = dir.OpenDir(n); sub.ok()) ListTree(**sub, rel, depth + 1, out);
      continue;
    }
    out->insert(rel);
  }
}

// The first of root/models, root/models/<org>, root/models/<org>/<name> that is a symlink
// ("" when none is).
std::string SymlinkOnPath(storage::Dir& root_dir, const std::string& root,
                          const std::string& repo) {
  std::string rel;
  for (const std::string& part : {std::string("models"), repo.substr(0, repo.find('/')),
                                  repo.substr(repo.find('/') + 1)}) {
    rel += (rel.empty() ? "" : "/") + part;
    auto info = storage::StatPath(root_dir, rel);
    if (info.ok() && info->type == storage::FileInfo::Type::kSymlink) return root + "/" + rel;
    if (!info.ok()) return "";
  }
  return "";
}

// Opens root_dir/rel for reading (never through a symlink, at any depth) and hashes it.
Result<FileHashResult> HashBelow(storage::Dir& root_dir, const std::string& rel, HashKind kind,
                                 std::atomic<uint64_t>* progress,
                                 const std::atomic<bool>* cancel = nullptr) {
  size_t slash = rel.rfind('/');
  std::unique_ptr<storage::Dir> parent;
  if (slash != std::string::npos) {
    MS_ASSIGN_OR_RETURN(parent, storage::OpenDirPath(root_dir, rel.substr(0, slash), false));
  }
  storage::Dir& d = parent ? *parent : root_dir;
  MS_ASSIGN_OR_RETURN(auto f, d.OpenFile(rel.substr(slash + 1), storage::OpenMode::kRead));
  return HashFile(*f, kind, progress, cancel);
}

std::set<std::string> Keys(const std::map<std::string, std::string>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

// The markers on disk against the log and the loadability rule.
void MarkerIssues(const Env& env, const std::string& root, const std::map<std::string, RepoState>& repos,
                  const std::string& only, std::vector<VerifyIssue>* out) {
  auto dir = env.fs->OpenRoot(root, false);
  if (!dir.ok()) return;
  auto is_marker = [&](const std::string& id) {
    if (!ValidateModelId(id).ok()) return false;
    auto st = (*dir)->Stat(id);
    return st.ok() && st->type == storage::FileInfo::Type::kFile && st->size == 0;
  };
  std::map<std::string, std::vector<std::string>> owners;
  for (const auto& [repo, rs] : repos)
    if (!rs.model_id.empty()) owners[rs.model_id].push_back(repo);
  const std::string where = root + "/";
  for (const auto& [repo, rs] : repos) {
    if (!only.empty() && repo != only) continue;
    if (rs.model_id.empty()) continue;
    const std::string m = where + rs.model_id;
    const bool present = is_marker(rs.model_id);
    if (owners[rs.model_id].size() > 1) {
      std::string others;
      for (const auto& r : owners[rs.model_id])
        if (r != repo) others += (others.empty() ? "" : ", ") + r;
      out->push_back({VerifyIssue::Kind::kMarker, repo, rs.model_id, "",
                      "model id " + rs.model_id + " is also claimed by " + others +
                          " (written by an older modelsync): pull one of them again with --id "
                          "NAME"});
    }
    if (rs.marker && !present) {
      out->push_back({VerifyIssue::Kind::kMarker, repo, rs.model_id, "",
                      "the marker " + m + " is missing although the log wrote it"});
    } else if (!rs.marker && present && owners[rs.model_id].size() == 1 &&
               !rs.active_commit.empty()) {
      // A crash between the marker's fsync and its MarkerWritten leaves it unrecorded: not
      // damage when the model it names loads (the next pull records it).
      auto l = HasActiveFiles(rs) ? CheckLoadable(root + "/models/" + repo, LoadabilityInputOf(rs))
                                  : Result<Loadability>(Status::NotFound("no files"));
      if (!rs.unloadable.empty() || !l.ok() || !l->loadable())
        out->push_back({VerifyIssue::Kind::kMarker, repo, rs.model_id, "",
                        "the marker " + m + " is present but the log never wrote it" +
                            (rs.unloadable.empty() ? "" : " (" + rs.unloadable + ")")});
    }
    if (rs.marker && present && HasActiveFiles(rs)) {
      auto l = CheckLoadable(root + "/models/" + repo, LoadabilityInputOf(rs));
      if (l.ok() && !l->loadable())
        out->push_back({VerifyIssue::Kind::kMarker, repo, rs.model_id, "",
                        "the marker " + m + " claims a model that does not load: " + l->reason});
    }
  }
  if (!only.empty()) return;
  auto names = (*dir)->List();
  if (!names.ok()) return;
  for (const auto& n : *names) {
    if (n.empty() || n[0] == '.' || n == "models" || owners.count(n) || !is_marker(n)) continue;
    out->push_back({VerifyIssue::Kind::kMarker, "", n, "",
                    "stray marker " + where + n + ": no model in the log owns it"});
  }
}

}  // namespace

const char* VerifyIssueName(VerifyIssue::Kind k) {
  switch (k) {
    case VerifyIssue::Kind::kMissing:
      return "missing";
    case VerifyIssue::Kind::kDamaged:
      return "damaged";
    case VerifyIssue::Kind::kExtra:
      return "extra";
    case VerifyIssue::Kind::kUnverifiable:
      return "unverifiable";
    case VerifyIssue::Kind::kMarker:
      return "marker";
  }
  return "?";
}

bool VerifyReport::damaged() const {
  for (const auto& i : issues)
    if (i.kind == VerifyIssue::Kind::kMissing || i.kind == VerifyIssue::Kind::kDamaged ||
        i.kind == VerifyIssue::Kind::kMarker)
      return true;
  return false;
}

Result<VerifyReport> Verify(const Env& env, const VerifyOptions& o) {
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, o.root, /*create=*/false));
  VerifyReport report;
  std::vector<Job> jobs;
  std::map<std::string, RepoState> repos;
  {
    MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, true, false));
    repos = journal->state().repos;
  }
  if (!o.repo.empty()) {
    auto it = repos.find(o.repo);
    if (it == repos.end() || !HasActiveFiles(it->second))
      return Status::NotFound(o.repo + " has no active revision in " + root +
                              " (modelsync status lists the models)");
  }
  std::unique_ptr<storage::Dir> check_dir;
  std::unique_ptr<storage::BlobStore> blob_store;
  if (auto d = env.fs->OpenRoot(root, false); d.ok()) {
    check_dir = std::move(*d);
    if (auto b = storage::BlobStore::Open(*check_dir, false); b.ok()) blob_store = std::move(*b);
  }
  // True when the model file root/rel is the blob of content id cid (hard-linked).
  auto linked_to = [&](const std::string& rel, const std::string& cid) {
    if (!check_dir || !blob_store) return false;
    auto f = storage::StatPath(*check_dir, rel);
    auto b = blob_store->Stat(cid);
    return f.ok() && b.ok() && f->ino == b->ino && f->dev == b->dev;
  };
  for (const auto& [repo, rs] : repos) {
    if (!HasActiveFiles(rs) || (!o.repo.empty() && repo != o.repo)) continue;
    ++report.repos;
    auto sizes = ActiveSizes(rs);
    std::set<std::string> on_disk;
    // Never through a symlink (storage/LAYOUT.md): pull refuses models/, models/<org> or the
    // model directory as a symlink, so verify reports it instead of hashing what it points to.
    std::string link = check_dir ? SymlinkOnPath(*check_dir, root, repo) : "";
    if (!link.empty()) {
      report.issues.push_back({VerifyIssue::Kind::kDamaged, repo, "", "",
                               link + " is a symlink: modelsync never follows one (replace it "
                                      "with a directory, then `modelsync rebuild`)"});
      continue;
    }
    // Where the files are. A swap that could not be atomic (docs/PLATFORM.md) and was
    // interrupted between its two renames leaves no models/<org>/<name> but the active
    // revision whole in models/<org>/.<name>.old (the next pull or rebuild renames it back):
    // an interrupted update, checked there, not damage.
    std::string dir_rel = "models/" + repo;
    const std::string old_rel = "models/" + repo.substr(0, repo.find('/')) + "/" + OldName(repo);
    if (check_dir && storage::StatPath(*check_dir, dir_rel).status().IsNotFound()) {
      auto old = storage::StatPath(*check_dir, old_rel);
      if (old.ok() && old->type == storage::FileInfo::Type::kDir) {
        dir_rel = old_rel;
        report.interrupted.push_back({repo, rs.active_commit, rs.active_commit});
      }
    }
    if (check_dir)
      if (auto md = storage::OpenDirPath(*check_dir, dir_rel, false); md.ok())
        ListTree(**md, "", 0, &on_disk);
    // A crash between the directory swap and the commit of FileMaterialized +
    // RevisionActivated leaves the directory holding, whole, the revision being pulled (the
    // last one resolved). Recognised when every name on disk is in that revision's manifest
    // and every file that differs from the active revision is a hard link to that
    // revision's blob; the files are then checked against it instead (not damage).
    const std::map<std::string, std::string>* expected = &rs.materialized;
    std::string expected_commit = rs.active_commit;
    std::map<std::string, std::string> candidate;
    auto target = rs.revisions.find(rs.last_resolved_commit);
    if (on_disk != Keys(rs.materialized) && target != rs.revisions.end() &&
        rs.last_resolved_commit != rs.active_commit) {
      std::map<std::string, uint64_t> target_sizes;
      for (const auto& f : target->second.files) {
        if (!on_disk.count(f.path())) continue;
        candidate[f.path()] = ContentIdOf(f);
        target_sizes[f.path()] = f.size();
      }
      size_t differing = 0, linked = 0;
      for (const auto& [path, cid] : candidate) {
        auto a = rs.materialized.find(path);
        if (a != rs.materialized.end() && a->second == cid) continue;
        ++differing;
        linked += linked_to(dir_rel + "/" + path, cid);
      }
      if (candidate.size() == on_disk.size() && differing > 0 && linked == differing) {
        expected = &candidate;
        expected_commit = rs.last_resolved_commit;
        sizes = std::move(target_sizes);
        report.interrupted.push_back({repo, expected_commit, rs.active_commit});
      }
    }
    for (const auto& [path, cid] : *expected) {
      on_disk.erase(path);
      if (!storage::BlobStore::IsValidId(cid)) {
        report.issues.push_back({VerifyIssue::Kind::kUnverifiable, repo, path, cid,
                                 "the log records no valid content id for it"});
        continue;
      }
      auto sz = sizes.find(path);
      jobs.push_back({repo, path, cid, dir_rel, sz == sizes.end() ? 0 : sz->second});
    }
    for (const auto& extra : on_disk)
      report.issues.push_back({VerifyIssue::Kind::kExtra, repo, extra, "",
                               "not part of the active revision " + expected_commit.substr(0, 12) +
                                   " (kept as it is: extra files are not damage)"});
  }
  MarkerIssues(env, root, repos, o.repo, &report.issues);

  VerifyProgress prog;
  for (const auto& j : jobs) prog.bytes_total += j.size;
  prog.files_total = jobs.size();
  std::atomic<uint64_t> bytes{0};
  std::atomic<size_t> next{0};
  std::mutex mu;  // guards report.issues, prog and the callback
  auto worker = [&]() {
    // Each worker reads through its own handle of the root (a Dir belongs to one thread).
    auto own_root = env.fs->OpenRoot(root, false);
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= jobs.size() || (o.cancel && o.cancel->load())) return;
      const Job& j = jobs[i];
      auto h = own_root.ok() ? HashBelow(**own_root, j.dir + "/" + j.path,
                                         KindOfContentId(j.content_id), &bytes, o.cancel)
                             : Result<FileHashResult>(own_root.status());
      if (!h.ok() && h.status().IsCancelled()) return;
      std::lock_guard<std::mutex> lock(mu);
      if (!h.ok()) {
        bool missing = h.status().IsNotFound();
        report.issues.push_back(
            {missing ? VerifyIssue::Kind::kMissing : VerifyIssue::Kind::kDamaged, j.repo, j.path,
             j.content_id, h.status().message()});
      } else if (h->hex != j.content_id) {
        report.issues.push_back(
            {VerifyIssue::Kind::kDamaged, j.repo, j.path, j.content_id,
             std::string(j.content_id.size() == 64 ? "sha256 " : "git blob sha1 ") + h->hex +
                 ", expected " + j.content_id});
      }
      ++prog.files_done;
      prog.bytes_done = bytes.load();
      if (o.on_progress) o.on_progress(prog);
    }
  };
  int n = std::max(1, std::min(o.threads, static_cast<int>(jobs.size())));
  std::vector<std::thread> threads;
  std::mutex done_mu;
  std::condition_variable done_cv;
  int running = n;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&] {
      worker();
      std::lock_guard<std::mutex> lock(done_mu);
      --running;
      done_cv.notify_all();
    });
  if (o.on_progress) {
    // While files hash, the bytes so far every progress_every (a 5 GB shard reports as it
    // goes, not only when it ends); the workers report each file as it ends.
    std::unique_lock<std::mutex> lock(done_mu);
    while (!done_cv.wait_for(lock, o.progress_every, [&] { return running == 0; })) {
      std::lock_guard<std::mutex> report_lock(mu);
      prog.bytes_done = bytes.load();
      o.on_progress(prog);
    }
  }
  for (auto& t : threads) t.join();
  if (o.cancel && o.cancel->load())
    return Status::Cancelled("verify interrupted after " + std::to_string(prog.files_done) +
                             " of " + std::to_string(jobs.size()) + " files (nothing changed)");
  report.files = jobs.size();
  report.bytes_hashed = bytes.load();
  std::sort(report.issues.begin(), report.issues.end(),
            [](const VerifyIssue& a, const VerifyIssue& b) {
              return std::tie(a.repo, a.path) < std::tie(b.repo, b.path);
            });
  // A model file is a hard link to its blob, so an edit in place (after a chmod) changes
  // every model that shares the content: name them all (repair re-fetches each).
  for (auto& i : report.issues) {
    if (i.kind != VerifyIssue::Kind::kDamaged || i.content_id.empty()) continue;
    std::string shared;
    for (const auto& [other, rs] : repos)
      for (const auto& [path, cid] : rs.materialized)
        if (cid == i.content_id && !(other == i.repo && path == i.path))
          shared += (shared.empty() ? "" : ", ") + other + "/" + path;
    if (!shared.empty())
      i.detail += "; the same content (one blob, hard-linked) is also " + shared +
                  ": an edit of one changes all of them";
  }
  if (!o.repair || !report.damaged()) return report;
  bool marker_issues = false;
  for (const auto& i : report.issues) marker_issues |= i.kind == VerifyIssue::Kind::kMarker;

  // Repair: drop damaged content (the blob and every model file linked to it), then let
  // Pull fetch exactly that content for each affected repo.
  std::set<std::string> affected;
  {
    MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, root, false, true));
    MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, false));
    MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*root_dir));
    std::set<std::string> bad;
    for (const auto& i : report.issues) {
      if (i.kind == VerifyIssue::Kind::kMissing) affected.insert(i.repo);
      if (i.kind != VerifyIssue::Kind::kDamaged) continue;
      affected.insert(i.repo);
      const std::string rel = "models/" + i.repo + "/" + i.path;
      auto fst = storage::StatPath(*root_dir, rel);
      auto bst = blobs->Stat(i.content_id);
      bool same = fst.ok() && bst.ok() && fst->ino == bst->ino && fst->dev == bst->dev;
      bool blob_bad = same;
      if (!same && blobs->Has(i.content_id)) {
        auto h = HashBelow(blobs->dir(), i.content_id, KindOfContentId(i.content_id), nullptr);
        // An unreadable blob is not known to be bad: it is re-fetched only if it hashes wrong.
        if (!h.ok() && !h.status().IsNotFound())
          return h.status().With("re-reading the blob of " + i.repo + "/" + i.path);
        blob_bad = !h.ok() || h->hex != i.content_id;
      }
      if (blob_bad) bad.insert(i.content_id);
      if (Status u = storage::UnlinkPath(*root_dir, rel); !u.ok() && !u.IsNotFound())
        return u.With("remove the damaged file");
    }
    for (const auto& cid : bad) {
      for (const auto& [repo, rs] : journal->state().repos) {
        if (!HasActiveFiles(rs)) continue;
        for (const auto& [path, id] : rs.materialized) {
          if (id != cid) continue;
          affected.insert(repo);
          Status u = storage::UnlinkPath(*root_dir, "models/" + repo + "/" + path);
          if (!u.ok() && !u.IsNotFound()) return u;
        }
      }
      if (journal->state().blobs.count(cid))
        MS_RETURN_IF_ERROR(journal->Append({BlobRemovedEvent(cid, "damaged")}).status());
      MS_RETURN_IF_ERROR(blobs->Remove(cid));
    }
  }
  report.repaired = true;
  for (const auto& repo : affected) {
    auto f = Refetch(env, root, repos.at(repo), o.endpoint, o.cancel);
    if (!f.ok()) {
      report.repaired = false;
      report.repair_errors.push_back(repo + ": " + f.status().message());
      continue;
    }
    report.bytes_fetched += f->bytes_fetched;
  }
  if (marker_issues) {
    // Markers agree with the log and the loadability rule again (rebuild's rules, no network).
    RebuildOptions ro;
    ro.root = root;
    auto rb = Rebuild(env, ro);
    if (!rb.ok()) {
      report.repaired = false;
      report.repair_errors.push_back("markers: " + rb.status().message());
    } else {
      for (const auto& r : rb->repos)
        if (!r.error.empty()) {
          report.repaired = false;
          report.repair_errors.push_back(r.repo + ": " + r.error);
        }
    }
  }
  return report;
}

}  // namespace modelsync::engine
