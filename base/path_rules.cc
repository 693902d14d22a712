// The rules for names that come from the network or the user (base/path_rules.h).
#include "base/path_rules.h"

namespace modelsync {
namespace {

Status Refuse(std::string_view what, std::string_view s, std::string_view why);

}  // namespace

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

namespace {

Status Refuse(std::string_view what, std::string_view s, std::string_view why) {
  return Status::InvalidArgument("refusing " + std::string(what) + " '" + ShowName(s) +
                                 "': " + std::string(why));
}

}  // namespace

const char* ComponentProblem(std::string_view name) {
  if (name.empty()) return "it has an empty component";
  if (name == "." || name == "..") return "it has a '.' or '..' component";
  if (name.size() > kMaxComponentBytes) return "a component is longer than 255 bytes";
  for (char c : name) {
    if (c == '/') return "a component contains '/'";
    if (c == '\0') return "it contains a NUL byte";
  }
  return nullptr;
}

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
  for (std::string_view comp : PathComponents(path))
    if (const char* why = ComponentProblem(comp)) return Refuse(kWhat, path, why);
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


}  // namespace modelsync
