// Reading the event log as a client does (`modelsync log`, the C API's ms_log): filtered by
// sequence number, repo and time, each event rendered by engine/event_format.h (one renderer
// for every client), runs of events compacted away by gc reported as such. No lock and no
// state load: it works beside a running writer. Not while this process holds a Journal of the
// same root (one LMDB handle per process: kLocked).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"

namespace modelsync::engine {

struct LogQuery {
  uint64_t from = 1;     // the first sequence number shown
  std::string repo;      // "" = all; else only this repo's events (transfer events through
                         // their TransferStarted, so the scan starts at 1)
  int64_t since_ms = 0;  // only events stamped at or after this wall time (ms since the epoch)
  bool json = false;     // lines as EventToJson (one line, invalid UTF-8 replaced), else
                         // FormatEventText
};

// on_event(seq, line) for each matching event, in order; on_gap(first, last) for each run of
// compacted events that ends at or after query.from (first raised to from). A non-OK return
// from either stops the scan with that status. A root without a log has no events (OK).
// Errors: the log's (kCorruption, kVersion, kIOError).
Status ReadLog(const std::string& root, const LogQuery& query,
               const std::function<Status(uint64_t seq, const std::string& line)>& on_event,
               const std::function<Status(uint64_t first, uint64_t last)>& on_gap);

}  // namespace modelsync::engine
