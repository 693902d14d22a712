#include "engine/repo_path.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>

namespace modelsync::engine {
namespace {

Status Refuse(std::string_view what, std::string_view s, std::string_view why) {
  return Status::InvalidArgument("refusing " + std::string(what) + " '" + ShowName(s) +
                                 "': " + std::string(why));
}

bool RepoChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}
bool WordChar(char c) { return RepoChar(c) && c != '.' && c != '-'; }

}  // namespace

Status ValidateRepoId(std::string_view repo) {
  constexpr std::string_view kWhat = "repo id";
  size_t slash = repo.find('/');
  if (slash == std::string_view::npos)
    return Refuse(kWhat, repo, "expected 'org/name' (for example mlx-community/Qwen2.5-0.5B)");
  if (repo.find('/', slash + 1) != std::string_view::npos)
    return Refuse(kWhat, repo, "expected exactly one '/' between org and name");
  if (repo.find("--") != std::string_view::npos || repo.find("..") != std::string_view::npos)
    return Refuse(kWhat, repo, "'--' and '..' are not allowed");
  for (std::string_view part : {repo.substr(0, slash), repo.substr(slash + 1)}) {
    if (part.empty()) return Refuse(kWhat, repo, "the org or the name is empty");
    if (part.size() > kMaxRepoPartBytes)
      return Refuse(kWhat, repo, "the org or the name is longer than 96 characters");
    for (char c : part)
      if (!RepoChar(c))
        return Refuse(kWhat, repo, "only letters, digits, '.', '_' and '-' are allowed");
    if (!WordChar(part.front()) || !WordChar(part.back()))
      return Refuse(kWhat, repo, "the org and the name must start and end with a letter or digit");
  }
  if (repo.size() >= 4 && repo.substr(repo.size() - 4) == ".git")
    return Refuse(kWhat, repo, "the name may not end in '.git'");
  return Status::Ok();
}

Status ValidateModelId(std::string_view id) {
  constexpr std::string_view kWhat = "model id";
  if (id.empty()) return Refuse(kWhat, id, "it is empty");
  if (id.size() > kMaxComponentBytes) return Refuse(kWhat, id, "it is longer than 255 bytes");
  if (id.front() == '.') return Refuse(kWhat, id, "it may not start with '.'");
  if (id == "models") return Refuse(kWhat, id, "'models' is the name of the models directory");
  for (char c : id) {
    if (c == '/' || c == '\\')
      return Refuse(kWhat, id, "it must be a single file name (no '/' or '\\')");
    if (IsControl(c)) return Refuse(kWhat, id, "it contains a control character");
  }
  if (!ValidUtf8(id)) return Refuse(kWhat, id, "it is not valid UTF-8");
  return Status::Ok();
}

namespace {

struct Decomposition {
  uint32_t cp;
  const char* nfd;
};
// Sorted by code point.
constexpr Decomposition kNfd[] = {
#include "engine/nfd_table.inc"
};

}  // namespace

std::string FoldCase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    // Two- and three-byte UTF-8 sequences may be precomposed letters: decompose them.
    size_t n = b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xC0 && b < 0xE0 ? 2 : 1;
    if (n > 1 && i + n <= s.size()) {
      uint32_t cp = n == 2 ? (b & 0x1Fu) << 6 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu)
                           : (b & 0x0Fu) << 12 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6 |
                                 (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
      auto it = std::lower_bound(std::begin(kNfd), std::end(kNfd), cp,
                                 [](const Decomposition& d, uint32_t c) { return d.cp < c; });
      if (it != std::end(kNfd) && it->cp == cp) {
        out += it->nfd;
        i += n;
        continue;
      }
    }
    out.append(s.substr(i, n));
    i += n;
  }
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Status CheckCaseCollisions(const std::vector<std::string>& paths, std::string_view where) {
  // A file that is also a directory of another path ("a" and "a/b") can never be laid out.
  std::map<std::string, std::string> files, dirs;  // folded -> original
  for (const auto& p : paths) {
    files.emplace(FoldCase(p), p);
    for (size_t end = p.find('/'); end != std::string::npos; end = p.find('/', end + 1))
      dirs.emplace(FoldCase(p.substr(0, end)), p.substr(0, end));
  }
  for (const auto& [folded, original] : files)
    if (auto d = dirs.find(folded); d != dirs.end())
      return Status::InvalidArgument(
          std::string(where) + " has '" + ShowName(original) + "' as a file and '" +
          ShowName(d->second) + "' as a directory: they cannot both exist, so modelsync refuses "
          "the listing before any fetch");
  std::map<std::string, std::string> seen;  // folded prefix -> the first original
  for (const auto& p : paths) {
    for (size_t end = p.find('/');; end = p.find('/', end + 1)) {
      std::string prefix = end == std::string::npos ? p : p.substr(0, end);
      auto [it, fresh] = seen.emplace(FoldCase(prefix), prefix);
      if (!fresh && it->second != prefix)
        return Status::InvalidArgument(
            std::string(where) + " has both '" + ShowName(it->second) + "' and '" +
            ShowName(prefix) +
            "', which differ only in case or Unicode normalisation: on a case- or "
            "normalisation-insensitive file system (the macOS default) they would be one file, "
            "so modelsync refuses the listing before any fetch");
      if (end == std::string::npos) break;
    }
  }
  return Status::Ok();
}

}  // namespace modelsync::engine
