// Parsing of the hub's JSON answers (internal to net/). Hostile input (wrong types, missing
// fields, deep nesting, absurd sizes) gives kPermanent with a message, never a crash or an
// exception.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "net/errors.h"
#include "proto/events.pb.h"

namespace modelsync::net {

inline constexpr size_t kMaxTreeEntries = 1'000'000;
// Entries (JSON objects) one page of the listing may hold; checked before it is parsed.
inline constexpr size_t kMaxTreePageEntries = 100'000;
// A Link rel="next" URL longer than this is refused (the hub's are ~200 bytes).
inline constexpr size_t kMaxNextUrlBytes = 16u << 10;

// {"sha": "<40-hex>", ...} -> the commit, lower case.
Result<std::string> ParseRevisionSha(const std::string& body, const ErrorContext& ctx);

// One page of tree/{commit}?recursive=true: appends its files (directories skipped).
Status ParseTreePage(const std::string& body, const ErrorContext& ctx,
                     std::vector<modelsync::v1::FileEntry>* files);

bool IsHex(const std::string& s, size_t len);

}  // namespace modelsync::net
