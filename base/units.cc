#include "base/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace modelsync {
namespace {

// Splits "12.5MB" into 12.5 and "MB". False when there is no number.
bool SplitNumber(std::string_view text, double* num, std::string_view* unit) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string n(text.substr(0, i));
  char* end = nullptr;
  *num = std::strtod(n.c_str(), &end);
  if (end != n.c_str() + n.size() || !std::isfinite(*num) || *num < 0) return false;
  *unit = text.substr(i);
  while (!unit->empty() && unit->front() == ' ') unit->remove_prefix(1);
  return true;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit))
    return Status::InvalidArgument("bad duration '" + std::string(text) + "' (try 500ms, 30s, 10m, 6h)");
  double ms = 0;
  if (unit.empty() && n == 0) return std::chrono::milliseconds(0);  // "0" needs no unit
  if (unit == "ms") ms = n;
  else if (unit == "s") ms = n * 1e3;
  else if (unit == "m") ms = n * 60e3;
  else if (unit == "h") ms = n * 3600e3;
  else if (unit == "d") ms = n * 86400e3;
  else
    return Status::InvalidArgument("bad duration '" + std::string(text) + "': unit must be ms, s, m, h or d");
  if (ms > 1e15) return Status::InvalidArgument("duration '" + std::string(text) + "' is too long");
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

Result<uint64_t> ParseBytes(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit))
    return Status::InvalidArgument("bad size '" + std::string(text) + "' (try 512KiB, 20MB, 1GiB)");
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "k" || unit == "K" || unit == "kB" || unit == "KB") mult = 1e3;
  else if (unit == "M" || unit == "MB") mult = 1e6;
  else if (unit == "G" || unit == "GB") mult = 1e9;
  else if (unit == "T" || unit == "TB") mult = 1e12;
  else if (unit == "KiB") mult = 1024.0;
  else if (unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "TiB") mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return Status::InvalidArgument("bad size '" + std::string(text) + "': unknown unit '" + std::string(unit) + "'");
  double v = n * mult;
  if (v > 1.8e19) return Status::InvalidArgument("size '" + std::string(text) + "' is too large");
  return static_cast<uint64_t>(std::llround(v));
}

Result<uint64_t> ParseRate(std::string_view text) {
  std::string_view t = text;
  if (t.size() >= 2 && t.substr(t.size() - 2) == "/s") t.remove_suffix(2);
  auto r = ParseBytes(t);
  if (!r.ok())
    return Status::InvalidArgument("bad rate '" + std::string(text) + "' (try 20MB/s, 512KiB/s)");
  if (*r == 0) return Status::InvalidArgument("rate '" + std::string(text) + "' must be above zero");
  return r;
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string FormatCount(uint64_t n) {
  const char* units[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  else std::snprintf(buf, sizeof buf, v < 10 ? "%.1f%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string FormatInterval(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms == 0) return "0";
  struct Unit {
    long long ms;
    const char* name;
  };
  for (Unit u : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"}, Unit{1000, "s"}})
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  return std::to_string(ms) + "ms";
}

std::string FormatDuration(std::chrono::milliseconds d) {
  long long ms = d.count();
  char buf[32];
  if (ms < 1000) std::snprintf(buf, sizeof buf, "%lldms", ms);
  else if (ms < 60'000) std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000);
  else if (ms < 3'600'000) std::snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60'000, ms / 1000 % 60);
  else std::snprintf(buf, sizeof buf, "%lldh%02lldm", ms / 3'600'000, ms / 60'000 % 60);
  return buf;
}

std::string FormatTimeMs(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace modelsync
