// Parsing and printing of the units a person types and reads.
//
// Durations: "500ms", "30s", "10m", "6h", "1d" (one number, one unit; no unit = error).
// Sizes and rates: "20MB/s", "512KiB/s", "1GB", "100" (bytes). Decimal units are powers of
// 1000 (kB, MB, GB), binary ones of 1024 (KiB, MiB, GiB); "K"/"M"/"G" alone are decimal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace modelsync {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
Result<uint64_t> ParseBytes(std::string_view text);          // "1GiB" -> 1073741824
Result<uint64_t> ParseRate(std::string_view text);           // bytes per second; "/s" optional
std::string FormatBytes(uint64_t bytes);                      // "1.5 GiB", "812 B"
std::string FormatCount(uint64_t n);                         // "119M", "1.5B", "812"
std::string FormatDuration(std::chrono::milliseconds d);      // "1h02m", "3.2s", "450ms"
std::string FormatTimeMs(int64_t unix_ms);                   // "2026-11-25T20:11:03Z" (UTC)
// An interval as a person types it, in its largest exact unit: "10m", "1h", "90s", "0";
// ParseDuration reads it back to the same value.
std::string FormatInterval(std::chrono::milliseconds d);

}  // namespace modelsync
