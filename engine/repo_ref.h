// What people paste for a repo, read the way they mean it.
//
// Users arrive with a repo id (`org/name`), a revision glued to it (`org/name@rev`,
// `org/name:rev`), a hub URL copied from the browser (`https://huggingface.co/org/name`,
// `.../tree/<rev>[/dir]`, `.../blob/<rev>/file`, `.../resolve/<rev>/file`, `hf.co/org/name`),
// a model id of their root (the marker's name) or a catalog short name. Every command that
// takes a repo reads it through here, so each form means the same thing everywhere.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/env.h"

namespace modelsync::engine {

struct RepoRef {
  std::string repo;      // "org/name"; a bare word (no '/') when the text named no org
  std::string revision;  // "" when the text names none
};

// Parses the text alone (no log, no network). kInvalidArgument saying why for what cannot be
// a model repo: a dataset or Space URL, a URL with no org/name, an empty revision after
// '@'/':', more than two path segments.
Result<RepoRef> ParseRepoRef(std::string_view text);

// A revision that may be a short commit: 7 to 39 lower-case hex digits.
bool LooksLikeShortCommit(std::string_view revision);

struct NamedRepo {
  std::string repo;      // "org/name"
  std::string revision;  // from the text ("" = none given)
  // How a bare word was read, for the user: "model id my-tiny is mlx-community/Tiny-4bit",
  // "catalog name qwen2.5-0.5b is mlx-community/Qwen2.5-0.5B-Instruct-4bit"; "" otherwise.
  std::string expanded;
};

// The repo the text names in this root: a repo id (any form ParseRepoRef reads) as is; a
// bare word is a model id the log assigns (read-only, no lock), else a catalog short name.
// kInvalidArgument naming the three things it could have been when it is none of them.
Result<NamedRepo> ResolveRepoArgument(const Env& env, const std::string& root,
                                      std::string_view text);

}  // namespace modelsync::engine
