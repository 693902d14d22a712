#include "engine/model_index.h"

#include <memory>
#include <nlohmann/json.hpp>

#include "engine/layout.h"
#include "storage/file_system.h"

namespace modelsync::engine {

std::string ModelsIndexJson(const State& st) {
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  std::map<std::string, const RepoState*> by_id;
  for (const auto& [name, rs] : st.repos) {
    if (rs.active_commit.empty() || rs.materialized.empty()) continue;
    by_id.emplace(rs.model_id.empty() ? RepoName(rs.repo) : rs.model_id, &rs);
  }
  for (const auto& [id, rs] : by_id) {
    uint64_t bytes = 0;
    if (auto rev = rs->revisions.find(rs->active_commit); rev != rs->revisions.end())
      for (const auto& f : rev->second.files)
        if (rs->materialized.count(f.path())) bytes += f.size();
    nlohmann::ordered_json m = {{"model_id", id},
                                {"repo", rs->repo},
                                {"dir", "models/" + rs->repo},
                                {"commit", rs->active_commit},
                                {"ref", rs->active_ref},
                                {"files", rs->materialized.size()},
                                {"bytes", bytes},
                                {"loadable", rs->marker},
                                {"marker", rs->marker ? id : ""}};
    if (!rs->marker && !rs->unloadable.empty()) m["reason"] = rs->unloadable;
    models.push_back(std::move(m));
  }
  nlohmann::ordered_json doc = {{"format", 1}, {"models", std::move(models)}};
  return doc.dump(2) + "\n";
}

Status WriteModelsIndex(storage::Dir& root, const State& st) {
  const std::string text = ModelsIndexJson(st);
  MS_ASSIGN_OR_RETURN(auto dir, storage::OpenDirPath(root, ".modelsync", true));
  if (auto info = dir->Stat(kModelsIndexName); info.ok() && info->size == text.size()) {
    auto f = dir->OpenFile(kModelsIndexName, storage::OpenMode::kRead);
    if (f.ok()) {
      std::string have(text.size(), '\0');
      auto n = (*f)->PRead(0, have.data(), have.size());
      if (n.ok() && *n == text.size() && have == text) return Status::Ok();
    }
  }
  const std::string tmp = std::string(kModelsIndexName) + ".tmp";
  {
    MS_ASSIGN_OR_RETURN(auto f, dir->OpenFile(tmp, storage::OpenMode::kCreateTruncate, 0644));
    MS_RETURN_IF_ERROR(f->PWrite(0, text));
    MS_RETURN_IF_ERROR(f->Sync());
  }
  MS_RETURN_IF_ERROR(dir->Rename(tmp, *dir, kModelsIndexName));
  return dir->Sync();
}

}  // namespace modelsync::engine
