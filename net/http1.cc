#include "net/http1.h"

#include "base/strings.h"

namespace modelsync::net {

bool HasToken(const std::optional<std::string>& value, std::string_view token) {
  if (!value) return false;
  std::string_view v(*value);
  while (!v.empty()) {
    const size_t comma = v.find(',');
    if (AsciiLower(TrimSpace(v.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

bool ParseHead(std::string_view text, ResponseHead* head, int* minor) {
  *head = ResponseHead();
  const size_t eol = text.find("\r\n");
  std::string_view status = text.substr(0, eol);
  if (status.size() < 12 || status.substr(0, 7) != "HTTP/1." || status[8] != ' ') return false;
  if (status[7] != '0' && status[7] != '1') return false;
  *minor = status[7] - '0';
  for (int i = 9; i < 12; ++i) {
    if (status[i] < '0' || status[i] > '9') return false;
  }
  if (status[9] == '0') return false;  // 000-099: no such status
  if (status.size() > 12 && status[12] != ' ') return false;
  head->status = (status[9] - '0') * 100 + (status[10] - '0') * 10 + (status[11] - '0');
  if (eol == std::string_view::npos) return true;
  std::string_view rest = text.substr(eol + 2);
  while (!rest.empty()) {
    const size_t e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // as libcurl: skipped
    const std::string_view name = TrimSpace(line.substr(0, colon));
    if (name.empty()) continue;
    head->headers.emplace_back(AsciiLower(name), std::string(TrimSpace(line.substr(colon + 1))));
  }
  return true;
}

std::optional<int64_t> ContentLength(const ResponseHead& head) {
  std::optional<int64_t> len;
  for (const auto& [name, value] : head.headers) {
    if (name != "content-length") continue;
    if (value.empty() || value.size() > 18) return -1;
    int64_t v = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    if (len && *len != v) return -1;
    len = v;
  }
  return len;
}

}  // namespace modelsync::net
