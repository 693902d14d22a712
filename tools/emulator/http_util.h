// Small HTTP helpers for the hub emulator: percent-coding, query strings, Range parsing,
// glob matching. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modelsync::emulator {

// %XX decoding ('+' stays '+': this is for path segments).
std::string PercentDecode(std::string_view s);
// Form decoding: '+' becomes ' ' as well.
std::string FormDecode(std::string_view s);
// Encodes everything outside RFC 3986 unreserved; keeps '/' when keep_slash.
std::string PercentEncode(std::string_view s, bool keep_slash);

using Query = std::vector<std::pair<std::string, std::string>>;
Query ParseQuery(std::string_view q);  // form-decoded keys and values, in order
std::optional<std::string> QueryGet(const Query& q, std::string_view key);

// Splits "/a/b%2Fc/d" into raw (still encoded) segments {"a","b%2Fc","d"}; empty segments kept
// except the leading one.
std::vector<std::string> SplitPath(std::string_view path);

// A byte range resolved against a body of `total` bytes: [first, last] inclusive.
struct ResolvedRange {
  uint64_t first = 0, last = 0;
};
enum class RangeKind { kNone, kOk, kUnsatisfiable };
// Parses a Range header ("bytes=a-b", "bytes=a-", "bytes=-n"). Multi-range and malformed
// headers are ignored (kNone: serve the whole body), as RFC 9110 allows.
RangeKind ParseRange(std::string_view header, uint64_t total, ResolvedRange* out);

// Pattern contains '*', '?' or '[' -> fnmatch (with '*' crossing '/'); otherwise substring.
bool PathMatches(std::string_view pattern, std::string_view path);

std::string Sha256HexOf(std::string_view data);

// gzip (RFC 1952) of data at the default level.
std::string Gzip(std::string_view data);

}  // namespace modelsync::emulator
