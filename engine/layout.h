// Where things live under the root (DESIGN.md "On disk"). Pure string functions; the
// arguments must already be validated (ValidateRepoId / ValidateModelId).
//   models/<org>/<name>/            the model directory
//   models/<org>/.<name>.staging    the next revision being built (materializer)
//   models/<org>/.<name>.old        the previous revision during a two-rename swap (only on
//                                   file systems without RENAME_EXCHANGE)
//   <model-id>                      the marker
#pragma once

#include <string>
#include <string_view>

namespace modelsync::engine {

inline std::string RepoOrg(std::string_view repo) {
  return std::string(repo.substr(0, repo.find('/')));
}
inline std::string RepoName(std::string_view repo) {
  return std::string(repo.substr(repo.find('/') + 1));
}
// "models/<org>" relative to the root.
inline std::string ModelsOrgRel(std::string_view repo) { return "models/" + RepoOrg(repo); }
inline std::string StagingName(std::string_view repo) { return "." + RepoName(repo) + ".staging"; }
inline std::string OldName(std::string_view repo) { return "." + RepoName(repo) + ".old"; }

}  // namespace modelsync::engine
