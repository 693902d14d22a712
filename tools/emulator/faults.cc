#include "emulator/faults.h"

#include "emulator/http_util.h"

namespace modelsync::emulator {

const char* ListenerName(Listener l) { return l == Listener::kHub ? "hub" : "cdn"; }

Result<FaultRule> ParseFaultRule(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("a fault rule must be a JSON object");
  static const char* kKnown[] = {
      "match",           "listener",     "method",           "times",        "per_path",
      "status_sequence", "retry_after",  "drop_after_bytes", "ignore_range", "wrong_content_range",
      "bad_etag",        "flip_byte_at", "throttle_bps",     "latency_ms",   "stall_after_bytes",
      "stall_ms",        "gzip",         "strip_etag"};
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* n : kKnown) known = known || k == n;
    if (!known) return Status::InvalidArgument("unknown fault rule key '" + k + "'");
  }
  FaultRule r;
  try {
    r.match = j.value("match", "");
    std::string l = j.value("listener", "both");
    if (l == "hub") {
      r.listener = Listener::kHub;
    } else if (l == "cdn") {
      r.listener = Listener::kCdn;
    } else if (l != "both") {
      return Status::InvalidArgument("listener must be hub, cdn or both, not '" + l + "'");
    }
    r.method = j.value("method", "");
    r.times = j.value("times", int64_t{-1});
    r.per_path = j.value("per_path", false);
    r.status_sequence = j.value("status_sequence", std::vector<int>{});
    r.retry_after = j.value("retry_after", int64_t{-1});
    r.drop_after_bytes = j.value("drop_after_bytes", int64_t{-1});
    r.ignore_range = j.value("ignore_range", false);
    if (j.contains("wrong_content_range")) {
      const auto& w = j["wrong_content_range"];
      r.wrong_content_range =
          w.is_boolean() ? (w.get<bool>() ? "shift" : "") : w.get<std::string>();
      if (r.wrong_content_range != "" && r.wrong_content_range != "shift" &&
          r.wrong_content_range != "total") {
        return Status::InvalidArgument("wrong_content_range must be true, \"shift\" or \"total\"");
      }
    }
    r.bad_etag = j.value("bad_etag", false);
    r.strip_etag = j.value("strip_etag", false);
    r.flip_byte_at = j.value("flip_byte_at", int64_t{-1});
    r.throttle_bps = j.value("throttle_bps", int64_t{0});
    r.latency_ms = j.value("latency_ms", int64_t{0});
    r.stall_after_bytes = j.value("stall_after_bytes", int64_t{-1});
    r.stall_ms = j.value("stall_ms", int64_t{0});
    r.gzip = j.value("gzip", false);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("bad fault rule: ") + e.what());
  }
  return r;
}

nlohmann::json FaultRuleToJson(const FaultRule& r) {
  nlohmann::json j = {{"match", r.match},
                      {"listener", r.listener ? ListenerName(*r.listener) : "both"},
                      {"method", r.method},
                      {"times", r.times},
                      {"per_path", r.per_path},
                      {"status_sequence", r.status_sequence},
                      {"retry_after", r.retry_after},
                      {"drop_after_bytes", r.drop_after_bytes},
                      {"ignore_range", r.ignore_range},
                      {"wrong_content_range", r.wrong_content_range},
                      {"bad_etag", r.bad_etag},
                      {"strip_etag", r.strip_etag},
                      {"flip_byte_at", r.flip_byte_at},
                      {"throttle_bps", r.throttle_bps},
                      {"latency_ms", r.latency_ms},
                      {"stall_after_bytes", r.stall_after_bytes},
                      {"stall_ms", r.stall_ms},
                      {"gzip", r.gzip},
                      {"fired", r.fired}};
  return j;
}

void FaultTable::Set(std::vector<FaultRule> rules) {
  std::lock_guard<std::mutex> l(mu_);
  rules_ = std::move(rules);
}

void FaultTable::Append(std::vector<FaultRule> rules) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& r : rules) rules_.push_back(std::move(r));
}

void FaultTable::Clear() { Set({}); }

nlohmann::json FaultTable::ToJson() const {
  std::lock_guard<std::mutex> l(mu_);
  nlohmann::json a = nlohmann::json::array();
  for (const FaultRule& r : rules_) a.push_back(FaultRuleToJson(r));
  return {{"faults", a}};
}

FaultPlan FaultTable::Plan(Listener listener, const std::string& method, const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  FaultPlan p;
  for (FaultRule& r : rules_) {
    if (r.listener && *r.listener != listener) continue;
    if (!r.method.empty() && r.method != method) continue;
    if (!PathMatches(r.match, path)) continue;
    int64_t& count = r.per_path ? r.fired_per_path[path] : r.fired;
    if (r.per_path) ++r.fired;
    int64_t limit = r.times;
    if (!r.status_sequence.empty()) {
      int64_t n = static_cast<int64_t>(r.status_sequence.size());
      limit = limit < 0 ? n : std::min(limit, n);
    }
    if (limit >= 0 && count >= limit) {
      if (r.per_path) --r.fired;
      continue;
    }
    int64_t index = count++;
    p.any = true;
    if (!r.status_sequence.empty() && !p.status) {
      int s = r.status_sequence[static_cast<size_t>(index)];
      if (s < 200 || s > 299) {
        p.status = s;
        p.retry_after = r.retry_after;
      }
    }
    if (r.drop_after_bytes >= 0) p.drop_after_bytes = r.drop_after_bytes;
    p.ignore_range |= r.ignore_range;
    if (!r.wrong_content_range.empty()) p.wrong_content_range = r.wrong_content_range;
    p.bad_etag |= r.bad_etag;
    p.strip_etag |= r.strip_etag;
    if (r.flip_byte_at >= 0) p.flip_byte_at = r.flip_byte_at;
    if (r.throttle_bps > 0) p.throttle_bps = r.throttle_bps;
    p.latency_ms += r.latency_ms;
    p.gzip |= r.gzip;
    if (r.stall_after_bytes >= 0) {
      p.stall_after_bytes = r.stall_after_bytes;
      p.stall_ms = r.stall_ms;
    }
  }
  return p;
}

void Recorder::Record(LogEntry e) {
  std::lock_guard<std::mutex> l(mu_);
  e.seq = next_seq_++;
  int li = e.listener == Listener::kHub ? 0 : 1;
  for (Counter* c : {&listeners_[li], &paths_[li][e.path]}) {
    c->requests++;
    c->body_bytes += e.body_bytes;
    c->authorization += e.authorization ? 1 : 0;
  }
  log_.push_back(std::move(e));
  if (log_.size() > 200000) log_.pop_front();
}

void Recorder::BeginSend() {
  std::lock_guard<std::mutex> l(mu_);
  ++sending_;
}

void Recorder::EndSend() {
  {
    std::lock_guard<std::mutex> l(mu_);
    --sending_;
  }
  settled_.notify_all();
}

void Recorder::Settle(std::unique_lock<std::mutex>& l) const {
  // Bounded: a response stalled on purpose (stall_ms, throttle) must not hold the counters.
  settled_.wait_for(l, std::chrono::milliseconds(250), [this] { return sending_ == 0; });
}

void Recorder::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  log_.clear();
  listeners_[0] = listeners_[1] = Counter{};
  paths_[0].clear();
  paths_[1].clear();
}

nlohmann::json Recorder::Stats() const {
  std::unique_lock<std::mutex> l(mu_);
  Settle(l);
  auto counter = [](const Counter& c) {
    return nlohmann::json{{"requests", c.requests},
                          {"body_bytes", c.body_bytes},
                          {"authorization_requests", c.authorization},
                          {"authorization_seen", c.authorization > 0}};
  };
  nlohmann::json out = {{"hub", counter(listeners_[0])}, {"cdn", counter(listeners_[1])}};
  nlohmann::json paths = nlohmann::json::object();
  for (int li = 0; li < 2; ++li) {
    for (const auto& [path, c] : paths_[li]) paths[path][li == 0 ? "hub" : "cdn"] = counter(c);
  }
  out["paths"] = std::move(paths);
  return out;
}

nlohmann::json Recorder::Log(uint64_t since_seq) const {
  std::unique_lock<std::mutex> l(mu_);
  Settle(l);
  nlohmann::json a = nlohmann::json::array();
  for (const LogEntry& e : log_) {
    if (e.seq <= since_seq) continue;
    a.push_back({{"seq", e.seq},
                 {"listener", ListenerName(e.listener)},
                 {"method", e.method},
                 {"path", e.path},
                 {"target", e.target},
                 {"status", e.status},
                 {"range", e.range},
                 {"authorization", e.authorization},
                 {"body_bytes", e.body_bytes},
                 {"dropped", e.dropped},
                 {"injected", e.injected}});
  }
  return a;
}

}  // namespace modelsync::emulator
