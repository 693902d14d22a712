// Fault injection and request accounting for the hub emulator. The JSON shapes are documented
// in tools/EMULATOR.md ("Control API").
//
// Thread-safe: FaultTable and Recorder lock internally; Plan() is a value.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace modelsync::emulator {

enum class Listener { kHub, kCdn };
const char* ListenerName(Listener l);

struct FaultRule {
  std::string match;                 // substring, or glob when it has * ? [
  std::optional<Listener> listener;  // unset = both
  std::string method;                // empty = any
  int64_t times = -1;                // requests the rule applies to; -1 = unlimited
  bool per_path = false;             // count `times` / the status sequence per distinct path
  // Effects (any combination):
  std::vector<int> status_sequence;  // nth matching request gets the nth status; 2xx = serve
  int64_t retry_after = -1;          // seconds, added to injected 429/503 answers
  int64_t drop_after_bytes = -1;     // close the connection after this many body bytes
  bool ignore_range = false;         // answer 200 with the whole body
  std::string wrong_content_range;   // "", "shift" (start and end +1) or "total" (total +1)
  bool bad_etag = false;             // ETag and X-Linked-Etag values altered (one hex digit)
  bool strip_etag = false;           // ETag and X-Linked-Etag removed (a proxy that drops them)
  int64_t flip_byte_at = -1;         // XOR 0xFF the byte at this offset of the file
  int64_t throttle_bps = 0;          // bytes per second per response
  int64_t latency_ms = 0;            // sleep before answering
  int64_t stall_after_bytes = -1;    // stop sending after this many body bytes...
  int64_t stall_ms = 0;              // ...for this long; <= 0 = until the client hangs up
  bool gzip = false;                 // 200 + Content-Encoding: gzip, chunked, no Content-Length
  // Bookkeeping.
  int64_t fired = 0;
  std::map<std::string, int64_t> fired_per_path;
};

Result<FaultRule> ParseFaultRule(const nlohmann::json& j);
nlohmann::json FaultRuleToJson(const FaultRule& r);

// What to do to one request: the union of all rules that fired for it.
struct FaultPlan {
  std::optional<int> status;  // injected non-2xx status (answer with it, no body)
  int64_t retry_after = -1;
  int64_t drop_after_bytes = -1;
  bool ignore_range = false;
  std::string wrong_content_range;
  bool bad_etag = false;
  bool strip_etag = false;
  int64_t flip_byte_at = -1;
  int64_t throttle_bps = 0;
  int64_t latency_ms = 0;
  int64_t stall_after_bytes = -1;
  int64_t stall_ms = 0;
  bool gzip = false;
  bool any = false;
  // True when the body must be copied through user space (no sendfile).
  bool TouchesBody() const {
    return drop_after_bytes >= 0 || flip_byte_at >= 0 || throttle_bps > 0 || stall_after_bytes >= 0;
  }
};

class FaultTable {
 public:
  void Set(std::vector<FaultRule> rules);
  void Append(std::vector<FaultRule> rules);
  void Clear();
  nlohmann::json ToJson() const;
  // Matches, counts and combines the rules for one request.
  FaultPlan Plan(Listener l, const std::string& method, const std::string& path);

 private:
  mutable std::mutex mu_;
  std::vector<FaultRule> rules_;
};

struct LogEntry {
  uint64_t seq = 0;
  Listener listener = Listener::kHub;
  std::string method, path, target, range;
  int status = 0;
  bool authorization = false;
  uint64_t body_bytes = 0;
  bool dropped = false;
  bool injected = false;
};

class Recorder {
 public:
  void Record(LogEntry e);
  // A response is being sent: Stats() and Log() wait (at most 250 ms) until every such
  // response is recorded or abandoned, so a client that has read its whole answer and asks
  // for the counters at once sees its own request counted.
  void BeginSend();
  void EndSend();
  void Clear();
  nlohmann::json Stats() const;
  nlohmann::json Log(uint64_t since_seq) const;

 private:
  struct Counter {
    uint64_t requests = 0, body_bytes = 0, authorization = 0;
  };
  void Settle(std::unique_lock<std::mutex>& l) const;
  mutable std::mutex mu_;
  mutable std::condition_variable settled_;
  int sending_ = 0;
  uint64_t next_seq_ = 1;
  std::deque<LogEntry> log_;
  Counter listeners_[2];
  std::map<std::string, Counter> paths_[2];
};

}  // namespace modelsync::emulator
