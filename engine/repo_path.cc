#include "engine/repo_path.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>

namespace modelsync::engine {
namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 2) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static const char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool IsControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

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

std::string ShowName(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += IsControl(c) ? '?' : c;
  if (s.size() > 200) out += "...";
  return out;
}

Status ValidateRepoPath(std::string_view path) {
  constexpr std::string_view kWhat = "file path from the hub";
  if (path.empty()) return Refuse(kWhat, path, "it is empty");
  if (path.size() > kMaxPathBytes) return Refuse(kWhat, path, "it is longer than 4096 bytes");
  for (char c : path) {
    if (c == '\0') return Refuse(kWhat, path, "it contains a NUL byte");
    if (IsControl(c)) return Refuse(kWhat, path, "it contains a control character");
    if (c == '\\') return Refuse(kWhat, path, "it contains a backslash");
  }
  if (path.front() == '/') return Refuse(kWhat, path, "it is absolute");
  if (!ValidUtf8(path)) return Refuse(kWhat, path, "it is not valid UTF-8");
  for (std::string_view comp : PathComponents(path)) {
    if (comp.empty()) return Refuse(kWhat, path, "it has an empty component");
    if (comp == "." || comp == "..") return Refuse(kWhat, path, "it has a '.' or '..' component");
    if (comp.size() > kMaxComponentBytes)
      return Refuse(kWhat, path, "a component is longer than 255 bytes");
  }
  return Status::Ok();
}

std::vector<std::string_view> PathComponents(std::string_view p) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t s = p.find('/', pos);
    if (s == std::string_view::npos) {
      out.push_back(p.substr(pos));
      return out;
    }
    out.push_back(p.substr(pos, s - pos));
    pos = s + 1;
  }
}

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
