// HTTP/1.x response heads, as the range reader (net/range_reader.h) reads them (internal to
// net/). Pure functions: tools/fuzz/fuzz_hub_headers.cc feeds them what a hostile server may
// send.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/transport.h"

namespace modelsync::net {

// Parses one response head: its status line and header lines, without the blank line that
// ends it. false: not HTTP/1.0 or 1.1 with a three-digit status of 100 or more (*head is then unspecified).
// Header names come lower case, values trimmed; a line without a colon is skipped, as
// libcurl does, and one with an empty name too. *minor is the HTTP/1.x minor version.
bool ParseHead(std::string_view text, ResponseHead* head, int* minor);

// The body's length from Content-Length: nullopt when absent; -1 when unusable (not a plain
// number of at most 18 digits, or two different values).
std::optional<int64_t> ContentLength(const ResponseHead& head);

// Whether a comma-separated header value names `token` (case-insensitive).
bool HasToken(const std::optional<std::string>& value, std::string_view token);

}  // namespace modelsync::net
