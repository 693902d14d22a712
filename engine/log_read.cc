#include "engine/log_read.h"

#include <algorithm>
#include <map>

#include "engine/event_format.h"
#include "engine/journal.h"

namespace modelsync::engine {

Status ReadLog(const std::string& root, const LogQuery& q,
               const std::function<Status(uint64_t seq, const std::string& line)>& on_event,
               const std::function<Status(uint64_t first, uint64_t last)>& on_gap) {
  std::map<uint64_t, std::string> transfers;  // transfer id -> repo, for the repo filter
  const uint64_t from = std::max<uint64_t>(q.from, 1);
  return Journal::ScanLog(
      root, q.repo.empty() ? from : 1,
      [&](uint64_t seq, const modelsync::v1::Event& e) -> Status {
        if (!q.repo.empty() && RepoOfEvent(e, &transfers) != q.repo) return Status::Ok();
        if (seq < from || e.time_ms() < q.since_ms) return Status::Ok();
        return on_event(seq, q.json ? EventToJson(seq, e).dump(
                                          -1, ' ', false,
                                          nlohmann::ordered_json::error_handler_t::replace)
                                    : FormatEventText(seq, e));
      },
      [&](uint64_t first, uint64_t last) -> Status {
        if (last < from) return Status::Ok();
        return on_gap(std::max(first, from), last);
      });
}

}  // namespace modelsync::engine
