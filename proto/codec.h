// Encoding and decoding of events, with size caps.
//
// DecodeEvent never trusts its input: a payload over kMaxEventBytes, a malformed message or
// an event of a kind this binary does not know is kCorruption or kVersion, never a crash.
// Thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"
#include "proto/events.pb.h"

namespace modelsync::proto {

using Event = ::modelsync::v1::Event;

// Biggest serialized event accepted (a manifest of ~100k files fits easily).
inline constexpr size_t kMaxEventBytes = 64u << 20;

std::string EncodeEvent(const Event& event);
// kCorruption on garbage or oversize; kVersion on a kind this binary does not know.
Status DecodeEvent(std::string_view payload, Event* event);

// "RangesCommitted", "RevisionResolved", ... ; "Unknown" for an unset kind.
std::string_view EventKindName(const Event& event);

}  // namespace modelsync::proto
