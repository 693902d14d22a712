#include "engine/report_json.h"

#include "base/units.h"

namespace modelsync::engine {

nlohmann::json MarkerJson(const std::string& root, const std::string& id, bool written,
                          const std::string& state, const std::string& reason) {
  nlohmann::json m = {{"id", id},
                      {"path", id.empty() ? "" : root + "/" + id},
                      {"written", written},
                      {"state", state.empty() ? (written ? "written" : "absent") : state}};
  if (!reason.empty()) m["reason"] = reason;
  return m;
}

nlohmann::json PullDoneJson(const PullSummary& s) {
  const size_t cut = s.marker_path.rfind('/');
  const std::string marker_root = cut == std::string::npos ? "" : s.marker_path.substr(0, cut);
  const std::string marker_id = cut == std::string::npos ? s.marker_path : s.marker_path.substr(cut + 1);
  nlohmann::json done = {{"event", "done"}, {"repo", s.repo}, {"commit", s.commit},
                         {"model_dir", s.model_dir},
                         {"marker", MarkerJson(marker_root, marker_id, s.marker_written, "",
                                               s.marker_note)},
                         {"files", s.files}, {"bytes_total", s.bytes_total},
                         {"bytes_fetched", s.bytes_fetched}, {"bytes_reused", s.bytes_reused},
                         {"up_to_date", s.up_to_date}, {"offline", s.offline},
                         {"seconds", s.seconds}};
  if (!s.previous_marker.empty()) done["previous_marker_removed"] = s.previous_marker;
  if (s.connections > 0) {
    done["connections"] = s.connections;
    done["start_connections"] = s.start_connections;
    done["wrote_ahead"] = s.wrote_ahead;
    done["bytes_in_place"] = s.bytes_in_place;
  }
  return done;
}

nlohmann::json DiffJson(const RevisionDiff& d) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : d.changes) {
    nlohmann::json j = {{"kind", ChangeKindName(c.kind)}, {"path", c.path}};
    if (!c.old_path.empty()) j["old_path"] = c.old_path;
    if (!c.content_id.empty()) j["content_id"] = c.content_id, j["size"] = c.size;
    if (!c.old_content_id.empty())
      j["old_content_id"] = c.old_content_id, j["old_size"] = c.old_size;
    if (c.kind != ChangeKind::kRemoved) j["needs_fetch"] = c.needs_fetch;
    changes.push_back(std::move(j));
  }
  return {{"repo", d.repo},           {"from_commit", d.from_commit}, {"from_ref", d.from_ref},
          {"to_commit", d.to_commit}, {"to_ref", d.to_ref},           {"remote", d.remote},
          {"identical", d.Identical()}, {"added", d.added},          {"modified", d.modified},
          {"removed", d.removed},     {"renamed", d.renamed},         {"unchanged", d.unchanged},
          {"fetch_bytes", d.fetch_bytes}, {"free_bytes", d.free_bytes}, {"to_bytes", d.to_bytes},
          {"changes", changes}};
}

nlohmann::json InspectJson(const std::string& root, const InspectReport& r) {
  const auto& m = r.model;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : r.files) files.push_back({{"path", f.path}, {"size", f.size}});
  nlohmann::json j = {{"repo", r.repo}, {"model_id", r.model_id}, {"ref", r.ref},
                      {"commit", r.commit}, {"model_dir", r.model_dir},
                      {"marker", MarkerJson(root, r.model_id, r.marker, "", "")},
                      {"verified", r.verified_ms > 0 ? FormatTimeMs(r.verified_ms) : ""},
                      {"files", files}, {"bytes_total", r.total_bytes},
                      {"is_model", r.is_model}};
  if (r.is_model && r.check_error.empty()) {
    j["model_type"] = m.model_type;
    j["quantization"] = m.QuantSummary();
    j["quantization_config_bits"] = m.config_quant.bits;
    j["quantization_tensor_bits"] = m.tensor_quant.bits;
    j["tensors"] = m.tensors;
    j["parameters"] = m.parameters;
  }
  if (!r.check_error.empty()) j["check_error"] = r.check_error;
  if (!r.derived.converter.empty()) {
    j["derived_from"] = {{"converter", r.derived.converter}, {"source", r.derived.source},
                         {"source_sha256", r.derived.source_sha256},
                         {"source_size", r.derived.source_size}, {"inputs", r.derived.inputs}};
    if (!r.derived.source_repo.empty())
      j["derived_from"]["source_repo"] = {{"repo", r.derived.source_repo},
                                          {"commit", r.derived.source_commit},
                                          {"file", r.derived.source_file}};
  }
  return j;
}

nlohmann::json CatalogEntryJson(const CatalogEntry& e) {
  return {{"name", e.name},
          {"repo", e.repo},
          {"parameters", ParameterCount(e)},  // numbers are numbers in every --json
          {"bytes_total", e.approx_bytes},
          {"bytes_total_exact", e.use.find("(exact size)") != std::string::npos},
          {"quantization", e.quantization},
          {"use", e.use}};
}

nlohmann::json AddLocalJson(const PullSummary& s, const std::string& model_id) {
  const size_t cut = s.marker_path.rfind('/');
  return {{"repo", s.repo}, {"commit", s.commit}, {"model_dir", s.model_dir},
          {"marker", MarkerJson(cut == std::string::npos ? "" : s.marker_path.substr(0, cut),
                                model_id, true, "written", "")},
          {"files", s.files}, {"bytes_total", s.bytes_total}, {"model_type", s.model_type},
          {"quantization", s.quantization}, {"tensors", s.tensors},
          {"parameters", s.parameters}};
}

nlohmann::json LsJson(const std::string& root, const StatusReport& r) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& s : r.repos) {
    if (s.active_commit.empty()) continue;  // nothing installed (status shows why)
    models.push_back({{"model_id", s.model_id},
                      {"repo", s.repo},
                      {"commit", s.active_commit},
                      {"ref", s.active_ref},
                      {"files", s.files_total},
                      {"bytes_total", s.bytes_total},
                      {"marker", MarkerJson(root, s.model_id, s.marker, s.marker_state,
                                            s.no_marker_reason)},
                      {"loadable", s.marker},
                      {"state", s.state},
                      {"model_dir", root + "/models/" + s.repo}});
    if (!s.converter.empty())
      models.back()["converted_from"] = {{"source", s.converted_from}, {"converter", s.converter}};
  }
  return {{"root", root},
          {"models", models},
          {"blob_bytes", r.blob_bytes},
          {"partial_bytes", r.partial_bytes}};
}

nlohmann::json StatusJson(const std::string& root, const StatusReport& r,
                          const nlohmann::json& daemon, bool offline) {
  nlohmann::json repos = nlohmann::json::array();
  for (const auto& s : r.repos) {
    nlohmann::json j = {{"repo", s.repo}, {"model_id", s.model_id}, {"state", s.state},
                        {"never_completed", s.never_completed},
                        {"active_commit", s.active_commit}, {"active_ref", s.active_ref},
                        {"target_commit", s.target_commit}, {"files_total", s.files_total},
                        {"files_done", s.files_done}, {"bytes_total", s.bytes_total},
                        {"bytes_done", s.bytes_done},
                        {"marker", MarkerJson(root, s.model_id, s.marker, s.marker_state,
                                              s.no_marker_reason)},
                        {"update_available", s.update_available},
                        {"update_files", s.update_files},
                        {"update_bytes", s.update_bytes}, {"tracked", s.tracked},
                        {"last_checked_ms", s.last_checked_ms}};
    if (!s.converter.empty())
      j["converted_from"] = {{"source", s.converted_from}, {"converter", s.converter}};
    if (!s.shared_with.empty()) j["model_id_shared_with"] = s.shared_with;
    if (!s.last_error.empty()) {
      j["last_error"] = s.last_error;
      j["last_error_ms"] = s.last_error_ms;
    }
    repos.push_back(std::move(j));
  }
  return {{"root", root},
          {"checked_against_hub", false},  // status never asks the hub: the log's answer
          {"offline", offline},
          {"daemon", daemon},
          {"repos", repos},
          {"stray_markers", r.stray_markers},
          {"blob_bytes", r.blob_bytes},
          {"partial_bytes", r.partial_bytes},
          {"damaged", r.damaged()}};
}

nlohmann::json HfExportJson(const HfExport& e) {
  return {{"repo", e.repo},         {"commit", e.commit},
          {"ref", e.ref},           {"cache", e.cache},
          {"snapshot", e.snapshot}, {"snapshot_created", e.snapshot_created},
          {"files", e.files},       {"linked", e.linked},
          {"copied", e.copied},     {"kept", e.kept},
          {"bytes_copied", e.bytes_copied}};
}

nlohmann::json HfImportRepoJson(const std::string& cache, const HfImportRepo& r) {
  return {{"repo", r.repo},
          {"cache", cache},
          {"snapshots", r.snapshots},
          {"files", r.files},
          {"adopted", r.adopted},
          {"already", r.already},
          {"bytes_adopted", r.bytes_adopted},
          {"damaged", r.damaged}};
}

nlohmann::json GgufJson(const std::string& path, const GgufInfo& g) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : g.tensors) {
    const GgmlType* type = FindGgmlType(t.type);
    tensors.push_back({{"name", t.name}, {"type", type ? type->name : "?"}, {"dims", t.dims},
                       {"offset", t.offset}, {"bytes", t.bytes}});
  }
  // ordered_json -> json (the document's own type), strings with invalid UTF-8 replaced.
  auto plain = [](const nlohmann::ordered_json& v) {
    return nlohmann::json::parse(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  nlohmann::json meta = nlohmann::json::object();
  size_t i = 0;
  for (const auto& [key, value] : g.metadata.items()) {
    const auto [type, elem] = g.metadata_types[i++];
    if (type != 9) {
      meta[key] = plain(value);
      continue;
    }
    nlohmann::json head = nlohmann::json::array();
    for (size_t k = 0; k < value.size() && k < 8; ++k) head.push_back(plain(value[k]));
    meta[key] = {{"array_of", GgufValueTypeName(elem)}, {"count", value.size()}, {"head", head}};
  }
  return {{"gguf", path},
          {"version", g.version},
          {"architecture", g.architecture},
          {"alignment", g.alignment},
          {"data_offset", g.data_offset},
          {"file_size", g.file_size},
          {"tensor_count", g.tensors.size()},
          {"tensors", tensors},
          {"metadata", meta}};
}

}  // namespace modelsync::engine
