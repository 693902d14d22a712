// How events look to people (`modelsync log`) and to machines (`log --json`, the C API's
// ms_log): one renderer for every client.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "proto/events.pb.h"

namespace modelsync::engine {

// One line, no newline: "#12 2026-11-25T20:11:03Z RangesCommitted transfer=3 [0, 8388608)".
std::string FormatEventText(uint64_t seq, const modelsync::v1::Event& event);

// {"seq":12,"time_ms":...,"time":"...","kind":"RangesCommitted","event":{<all fields>}}.
// Field names are the schema's (proto/events.proto); 64-bit integers are JSON numbers.
nlohmann::ordered_json EventToJson(uint64_t seq, const modelsync::v1::Event& event);

// The repo an event is about ("" for none); transfer events through their TransferStarted,
// which *transfers (transfer id -> repo) learns as the log is scanned in order.
std::string RepoOfEvent(const modelsync::v1::Event& e, std::map<uint64_t, std::string>* transfers);

}  // namespace modelsync::engine
