#include "emulator/http_util.h"

#include <fnmatch.h>
#include <zlib.h>

#include <charconv>

#include "base/hash.h"

namespace modelsync::emulator {

namespace {
int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexVal(s[i + 1]) >= 0 && HexVal(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexVal(s[i + 1]) * 16 + HexVal(s[i + 2])));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool ParseU64(std::string_view s, uint64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

std::string PercentDecode(std::string_view s) { return Decode(s, false); }
std::string FormDecode(std::string_view s) { return Decode(s, true); }

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Query ParseQuery(std::string_view q) {
  Query out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    if (!part.empty()) {
      size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(FormDecode(part), "");
      } else {
        out.emplace_back(FormDecode(part.substr(0, eq)), FormDecode(part.substr(eq + 1)));
      }
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::optional<std::string> QueryGet(const Query& q, std::string_view key) {
  for (const auto& [k, v] : q)
    if (k == key) return v;
  return std::nullopt;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  if (path.empty()) return out;
  for (;;) {
    size_t slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

RangeKind ParseRange(std::string_view h, uint64_t total, ResolvedRange* out) {
  if (h.substr(0, 6) != "bytes=") return RangeKind::kNone;
  h.remove_prefix(6);
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.find(',') != std::string_view::npos) return RangeKind::kNone;
  size_t dash = h.find('-');
  if (dash == std::string_view::npos) return RangeKind::kNone;
  std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: last n bytes
    uint64_t n = 0;
    if (!ParseU64(b, &n)) return RangeKind::kNone;
    if (n == 0 || total == 0) return RangeKind::kUnsatisfiable;
    first = n >= total ? 0 : total - n;
    last = total - 1;
  } else {
    if (!ParseU64(a, &first)) return RangeKind::kNone;
    if (b.empty()) {
      last = total == 0 ? 0 : total - 1;
    } else {
      if (!ParseU64(b, &last) || last < first) return RangeKind::kNone;
      if (total > 0 && last >= total) last = total - 1;
    }
    if (first >= total) return RangeKind::kUnsatisfiable;
  }
  out->first = first;
  out->last = last;
  return RangeKind::kOk;
}

bool PathMatches(std::string_view pattern, std::string_view path) {
  if (pattern.find_first_of("*?[") == std::string_view::npos) {
    return path.find(pattern) != std::string_view::npos;
  }
  return fnmatch(std::string(pattern).c_str(), std::string(path).c_str(), 0) == 0;
}

std::string Sha256HexOf(std::string_view data) { return Sha256Hex(data); }

std::string Gzip(std::string_view data) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace modelsync::emulator
