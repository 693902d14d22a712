// The control API under /_emulator/ on the hub listener (tools/EMULATOR.md, "Control API").
#include "emulator/app.h"

namespace modelsync::emulator {

namespace {
Response Ok(nlohmann::json extra = nlohmann::json::object()) {
  extra["ok"] = true;
  return JsonResponse(200, extra);
}
Response Bad(const std::string& message) { return JsonResponse(400, {{"error", message}}); }
}  // namespace

Response HubApp::Control(const Request& req, const std::vector<std::string>& seg) {
  std::string op = seg.size() > 1 ? seg[1] : "";
  bool post = req.method == "POST";
  nlohmann::json body;
  if (post && !req.body.empty()) {
    body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded()) return Bad("control API bodies are JSON; this one does not parse");
  }
  if (op == "health") return Ok();
  if (op == "faults" && req.method == "GET") return JsonResponse(200, faults_.ToJson());
  if (op == "faults" && post) {
    nlohmann::json list = body.is_array() ? body : body.value("faults", nlohmann::json::array());
    if (!list.is_array()) return Bad("expected {\"faults\": [rule, ...]}");
    std::vector<FaultRule> rules;
    for (const auto& j : list) {
      auto r = ParseFaultRule(j);
      if (!r.ok()) return Bad(r.status().message());
      rules.push_back(std::move(*r));
    }
    if (body.is_object() && body.value("append", false)) {
      faults_.Append(std::move(rules));
    } else {
      faults_.Set(std::move(rules));
    }
    return Ok(faults_.ToJson());
  }
  if (op == "reset" && post) {
    ++epoch_;
    faults_.Clear();
    recorder_.Clear();
    page_size_ = config_.page_size;
    resolve_cache_ = config_.resolve_cache;
    {
      std::lock_guard<std::mutex> l(renames_mu_);
      renames_.clear();
    }
    Status s = store_.Reload();
    return s.ok() ? Ok() : JsonResponse(500, {{"error", s.ToString()}});
  }
  if (op == "reload" && post) {
    Status s = store_.Reload();
    return s.ok() ? Ok() : JsonResponse(500, {{"error", s.ToString()}});
  }
  if (op == "stats" && req.method == "GET") return JsonResponse(200, recorder_.Stats());
  if (op == "log" && req.method == "GET") {
    uint64_t since = 0;
    if (auto s = QueryGet(req.params, "since")) since = std::strtoull(s->c_str(), nullptr, 10);
    return JsonResponse(200, recorder_.Log(since));
  }
  if (op == "refs" && req.method == "GET") {
    auto repo = QueryGet(req.params, "repo");
    if (!repo) return Bad("GET /_emulator/refs needs ?repo=org/name");
    return JsonResponse(200, store_.Refs(*repo));
  }
  if (op == "refs" && post) {
    if (!body.is_object() || !body.contains("repo") || !body.contains("ref") ||
        !body.contains("commit")) {
      return Bad("expected {\"repo\": \"org/name\", \"ref\": \"main\", \"commit\": \"<40-hex>\"}");
    }
    Status s = store_.MoveRef(body["repo"].get<std::string>(), body["ref"].get<std::string>(),
                              body["commit"].get<std::string>());
    return s.ok() ? Ok() : JsonResponse(404, {{"error", s.message()}});
  }
  if (op == "config" && post) {
    if (body.contains("page_size")) page_size_ = body["page_size"].get<size_t>();
    if (body.contains("resolve_cache")) resolve_cache_ = body["resolve_cache"].get<bool>();
    if (body.contains("renames")) {
      if (!body["renames"].is_object()) return Bad("renames must be {\"old/name\": \"new/name\"}");
      std::lock_guard<std::mutex> l(renames_mu_);
      renames_ = body["renames"].get<std::map<std::string, std::string>>();
    }
    return Ok({{"page_size", page_size_.load()}, {"resolve_cache", resolve_cache_.load()}});
  }
  return JsonResponse(404,
                      {{"error", "unknown control endpoint " + req.method + " " + req.raw_path}});
}

}  // namespace modelsync::emulator
