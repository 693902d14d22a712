#include "engine/repo_ref.h"

#include "engine/recovery_util.h"

#include <vector>

#include "base/strings.h"
#include "engine/catalog.h"
#include "engine/journal.h"

namespace modelsync::engine {
namespace {

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) out.emplace_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}


Result<RepoRef> FromUrlPath(const std::string& text, std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  std::vector<std::string> seg = Segments(path);
  if (!seg.empty() && (seg[0] == "datasets" || seg[0] == "spaces")) {
    return Status::InvalidArgument("'" + text + "' is a " +
                                   (seg[0] == "datasets" ? std::string("dataset")
                                                         : std::string("Space")) +
                                   ": modelsync syncs model repos only");
  }
  if (seg.size() < 2) {
    return Status::InvalidArgument("'" + text + "' names no repo: give a URL like "
                                   "https://huggingface.co/org/name");
  }
  RepoRef r;
  if (size_t at = seg[1].find('@'); at != std::string::npos) {  // hf.co/org/name@rev
    r.revision = seg[1].substr(at + 1);
    seg[1].resize(at);
  }
  r.repo = seg[0] + "/" + seg[1];
  if (seg.size() >= 4 &&
      (seg[2] == "tree" || seg[2] == "blob" || seg[2] == "resolve" || seg[2] == "commit")) {
    r.revision = PercentDecode(seg[3]);
  }
  return r;
}

}  // namespace

bool LooksLikeShortCommit(std::string_view revision) {
  return revision.size() >= 7 && revision.size() < 40 &&
         revision.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<RepoRef> ParseRepoRef(std::string_view raw) {
  std::string text(TrimSpace(raw));
  if (text.empty()) return Status::InvalidArgument("empty repo: give org/name");
  for (std::string_view scheme : {"https://", "http://"}) {
    if (!text.starts_with(scheme)) continue;
    std::string_view rest = std::string_view(text).substr(scheme.size());
    size_t slash = rest.find('/');
    return FromUrlPath(text, slash == std::string_view::npos ? "" : rest.substr(slash));
  }
  for (std::string_view host : {"huggingface.co/", "www.huggingface.co/", "hf.co/"}) {
    if (text.starts_with(host)) return FromUrlPath(text, std::string_view(text).substr(host.size() - 1));
  }
  RepoRef r;
  size_t cut = text.find_first_of("@:");
  r.repo = text.substr(0, cut);
  if (cut != std::string::npos) {
    r.revision = text.substr(cut + 1);
    if (r.revision.empty()) {
      return Status::InvalidArgument("'" + text + "' has no revision after '" + text[cut] +
                                     "': give org/name" + text[cut] + "REV, or org/name alone");
    }
  }
  if (r.repo.find('/') != r.repo.rfind('/')) {
    return Status::InvalidArgument("'" + r.repo + "' is not a repo id: give org/name (one '/')");
  }
  return r;
}

Result<NamedRepo> ResolveRepoArgument(const Env& env, const std::string& root,
                                      std::string_view text) {
  MS_ASSIGN_OR_RETURN(RepoRef ref, ParseRepoRef(text));
  NamedRepo out;
  out.revision = ref.revision;
  if (ref.repo.find('/') != std::string::npos) {
    out.repo = ref.repo;
    return out;
  }
  const std::string& word = ref.repo;
  JournalOptions jo;
  jo.clock = env.clock;
  auto journal = Journal::Open(root, /*read_only=*/true, jo);
  if (journal.ok()) {
    for (const auto& [name, rs] : (*journal)->state().repos) {
      if (rs.model_id != word || name.empty()) continue;
      out.repo = name;
      out.expanded = "model id " + word + " is " + name;
      return out;
    }
  }
  if (const CatalogEntry* e = FindCatalogEntry(word)) {
    out.repo = e->repo;
    out.expanded = "catalog name " + word + " is " + e->repo;
    return out;
  }
  return Status::InvalidArgument("'" + word + "' is not a repo id (org/name), a model id of " +
                                 root + " or a catalog name (modelsync catalog lists them)");
}

Result<std::string> ExpandShortCommit(const State& state, const std::string& repo,
                                      const std::string& revision) {
  if (!LooksLikeShortCommit(revision)) return revision;
  auto it = state.repos.find(repo);
  if (it == state.repos.end()) return std::string();
  std::vector<std::string> hits;
  for (const auto& [commit, rev] : it->second.revisions)
    if (commit.rfind(revision, 0) == 0) hits.push_back(commit);
  if (hits.empty()) return std::string();
  if (hits.size() > 1) {
    std::string list;
    for (const auto& h : hits) list += (list.empty() ? "" : ", ") + h;
    return Status::InvalidArgument("revision " + revision + " of " + repo +
                                   " is ambiguous: it starts " + std::to_string(hits.size()) +
                                   " commits this root knows (" + list + "); give more digits");
  }
  return hits.front();
}

}  // namespace modelsync::engine
