#include "engine/diff_revisions.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "base/hash.h"
#include "engine/glob.h"
#include "engine/hub_config.h"
#include "engine/journal.h"
#include "engine/manifest_events.h"
#include "engine/planner.h"
#include "engine/repo_path.h"
#include "net/hub.h"
#include "net/hub_options.h"

namespace modelsync::engine {

const char* ChangeKindName(ChangeKind k) {
  switch (k) {
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kModified:
      return "modified";
    case ChangeKind::kRemoved:
      return "removed";
    case ChangeKind::kRenamed:
      return "renamed";
    case ChangeKind::kUnchanged:
      return "unchanged";
  }
  return "?";
}

RevisionDiff DiffRevisions(const std::vector<v1::FileEntry>& from,
                           const std::vector<v1::FileEntry>& to, const State& state,
                           const std::string& repo) {
  RevisionDiff d;
  d.repo = repo;
  std::map<std::string, const v1::FileEntry*> old_by_path, new_by_path;
  for (const auto& f : from) old_by_path[f.path()] = &f;
  for (const auto& f : to) new_by_path[f.path()] = &f;

  // Old paths that vanish, by content id (path order), for rename pairing.
  std::map<std::string, std::vector<std::string>> vanished;
  for (const auto& [p, f] : old_by_path)
    if (!new_by_path.count(p)) vanished[ContentIdOf(*f)].push_back(p);
  std::map<std::string, size_t> next_vanished;
  std::set<std::string> renamed_from;

  std::set<std::string> fetch_ids, to_ids;
  for (const auto& [p, f] : new_by_path) {
    FileChange c;
    c.path = p;
    c.content_id = ContentIdOf(*f);
    c.size = f->size();
    c.needs_fetch = !state.blobs.count(c.content_id);
    if (to_ids.insert(c.content_id).second) d.to_bytes += c.size;
    if (c.needs_fetch && fetch_ids.insert(c.content_id).second) d.fetch_bytes += c.size;
    auto o = old_by_path.find(p);
    if (o != old_by_path.end()) {
      c.old_content_id = ContentIdOf(*o->second);
      c.old_size = o->second->size();
      c.kind = c.old_content_id == c.content_id ? ChangeKind::kUnchanged : ChangeKind::kModified;
    } else if (auto v = vanished.find(c.content_id);
               v != vanished.end() && next_vanished[c.content_id] < v->second.size()) {
      c.kind = ChangeKind::kRenamed;
      c.old_path = v->second[next_vanished[c.content_id]++];
      c.old_content_id = c.content_id;
      c.old_size = c.size;
      renamed_from.insert(c.old_path);
    } else {
      c.kind = ChangeKind::kAdded;
    }
    d.changes.push_back(std::move(c));
  }
  for (const auto& [p, f] : old_by_path) {
    if (new_by_path.count(p) || renamed_from.count(p)) continue;
    FileChange c;
    c.kind = ChangeKind::kRemoved;
    c.path = p;
    c.old_content_id = ContentIdOf(*f);
    c.old_size = f->size();
    d.changes.push_back(std::move(c));
  }
  std::sort(d.changes.begin(), d.changes.end(),
            [](const FileChange& a, const FileChange& b) { return a.path < b.path; });
  for (const auto& c : d.changes) {
    switch (c.kind) {
      case ChangeKind::kAdded:
        ++d.added;
        break;
      case ChangeKind::kModified:
        ++d.modified;
        break;
      case ChangeKind::kRemoved:
        ++d.removed;
        break;
      case ChangeKind::kRenamed:
        ++d.renamed;
        break;
      case ChangeKind::kUnchanged:
        ++d.unchanged;
        break;
    }
  }

  // Freed: content of `from` that `to` and every other repo's active files do not use.
  std::set<std::string> still_used = to_ids;
  for (const auto& [name, other] : state.repos)
    if (name != repo)
      for (const auto& [p, id] : other.materialized) still_used.insert(id);
  std::set<std::string> freed;
  for (const auto& [p, f] : old_by_path) {
    std::string id = ContentIdOf(*f);
    if (still_used.count(id) || !freed.insert(id).second) continue;
    if (auto b = state.blobs.find(id); b != state.blobs.end()) d.free_bytes += b->second;
  }
  return d;
}

std::vector<v1::FileEntry> ActiveFiles(const RepoState& rs) {
  std::vector<v1::FileEntry> out;
  auto rev = rs.revisions.find(rs.active_commit);
  if (rs.active_commit.empty() || rev == rs.revisions.end()) return out;
  PathFilter filter(rs.active_include, rs.active_exclude);
  for (const auto& f : rev->second.files)
    if (filter.Keep(f.path())) out.push_back(f);
  return out;
}

namespace {

// The target revision named by `revision` among those in the log (local diff).
Result<std::string> LocalTarget(const RepoState& rs, const std::string& revision) {
  if (revision.empty()) {
    if (!rs.last_resolved_commit.empty()) return rs.last_resolved_commit;
    if (!rs.active_commit.empty()) return rs.active_commit;
    return Status::NotFound(rs.repo +
                            " has no resolved revision in the log: run `modelsync "
                            "diff " +
                            rs.repo + "` online, or pull it");
  }
  if (rs.revisions.count(revision)) return revision;
  if (rs.last_resolved_ref == revision && !rs.last_resolved_commit.empty())
    return rs.last_resolved_commit;
  const RevisionState* best = nullptr;
  for (const auto& [c, r] : rs.revisions)
    if (r.ref == revision && (!best || r.resolved_ms > best->resolved_ms)) best = &r;
  if (best) return best->commit;
  return Status::NotFound("the log of this root has no revision '" + revision + "' of " + rs.repo +
                          " (a local diff only knows revisions resolved before): "
                          "drop --local and unset HF_HUB_OFFLINE to ask the hub");
}

// The target manifest filtered like the active revision; paths validated.
Result<std::vector<v1::FileEntry>> Filtered(const RepoState& rs,
                                            const std::vector<v1::FileEntry>& all) {
  PathFilter filter(rs.active_include, rs.active_exclude);
  std::vector<v1::FileEntry> out;
  for (const auto& f : all) {
    MS_RETURN_IF_ERROR(
        ValidateRepoPath(f.path()).With("the hub listed an unsafe path in " + rs.repo));
    if (filter.Keep(f.path())) out.push_back(f);
  }
  return out;
}

}  // namespace

Result<RevisionDiff> RunDiff(const Env& env, const DiffOptions& o) {
  MS_RETURN_IF_ERROR(ValidateRepoId(o.repo));
  net::HubOptions hopts = HubOptionsOf(env, o.endpoint);
  const bool local = o.local || hopts.offline;

  JournalOptions jo;
  jo.clock = env.clock;
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(o.root, /*read_only=*/true, jo));
  const State& st = journal->state();
  static const RepoState kNone;
  auto it = st.repos.find(o.repo);
  if (local && it == st.repos.end())
    return Status::NotFound(o.repo + " is not in " + o.root +
                            " (pull it first; a local diff compares revisions in the log)");
  const RepoState& rs = it == st.repos.end() ? kNone : it->second;

  RevisionDiff d;
  std::vector<v1::FileEntry> target;
  std::vector<v1::Event> record;  // the resolve to log, if any
  std::string to_commit, to_ref;
  if (local) {
    MS_ASSIGN_OR_RETURN(to_commit, LocalTarget(rs, o.revision));
    auto rev = rs.revisions.find(to_commit);
    if (rev == rs.revisions.end())
      return Status::NotFound("the manifest of " + o.repo + "@" + to_commit +
                              " is not in the log: drop --local to ask the hub");
    to_ref = rev->second.ref;
    MS_ASSIGN_OR_RETURN(target, Filtered(rs, rev->second.files));
  } else {
    to_ref = o.revision.empty() ? "main" : o.revision;
    net::Hub hub(hopts);
    MS_ASSIGN_OR_RETURN(auto resolved, hub.Resolve(o.repo, to_ref, [&](const std::string& c) {
      return rs.revisions.count(c) > 0;
    }));
    if (!resolved.listed) resolved.files = rs.revisions.at(resolved.commit).files;
    to_commit = resolved.commit;
    MS_ASSIGN_OR_RETURN(target, Filtered(rs, resolved.files));
    bool tracked_ref = rs.active_ref.empty() || rs.active_ref == to_ref;
    bool news = !rs.revisions.count(to_commit) || rs.last_resolved_commit != to_commit ||
                rs.last_resolved_ref != to_ref;
    if (it != st.repos.end() && tracked_ref && news) {
      record = ResolvedEvents(o.repo, to_ref, to_commit, hopts.endpoint, resolved.files);
    }
  }
  d = DiffRevisions(ActiveFiles(rs), target, journal->state(), o.repo);
  d.from_commit = rs.active_commit;
  d.from_ref = rs.active_ref;
  d.to_commit = to_commit;
  d.to_ref = to_ref;
  d.remote = !local;
  if (!record.empty()) {
    // Recorded only when the root is free right now (never waits for a running pull). The
    // read-only handle goes first: LMDB allows one handle per process.
    journal.reset();
    auto rw = Journal::Open(o.root, /*read_only=*/false, jo);
    if (!rw.ok() && !rw.status().IsLocked()) return rw.status();
    if (rw.ok()) MS_RETURN_IF_ERROR((*rw)->Append(std::move(record)).status());
  }
  return d;
}

}  // namespace modelsync::engine
