// The trees, blobs and checks the materializer tests share (materializer_test.cc: builds,
// swaps, errors and crash points; materializer_ahead_test.cc: a tree built ahead of
// Materialize with Begin, Add, Stage, Publish and NoteSynced).
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/platform.h"
#include "engine/materializer.h"
#include "storage/blob_store.h"
#include "test_util.h"

namespace modelsync::testing::trees {

using engine::MaterialFile;
using engine::Materializer;
using storage::FileSystem;

inline const std::string kRepo = "acme/tiny-model";
using Tree = std::map<std::string, std::string>;  // path -> content

inline Tree V1() {
  return {{"config.json", "{\"v\": 1}"},
          {"tokenizer_config.json", "tok v1"},
          {"model.safetensors", std::string(100000, 'w')},
          {"sub/dir/a.txt", "a"}};
}
inline Tree V2() {
  return {{"config.json", "{\"v\": 2}"},
          {"model.safetensors", std::string(100000, 'w')},
          {"sub/dir/a.txt", "a"},
          {"sub/new.txt", "new"}};
}

inline std::string IdOf(const std::string& content) { return GitBlobSha1Hex(content); }

// Puts every file's content in the blob store (directly; the store is the test's fixture).
inline void PutBlobs(const std::string& root, const Tree& t) {
  for (const auto& [p, c] : t) {
    std::string path = root + "/.modelsync/blobs/" + IdOf(c);
    if (Exists(path)) continue;
    Spit(path, c);
    ::chmod(path.c_str(), 0444);
  }
}

inline std::vector<MaterialFile> Files(const Tree& t) {
  std::vector<MaterialFile> out;
  for (const auto& [p, c] : t) out.push_back({p, IdOf(c)});
  return out;
}

// The tree under dir as path -> content ("<symlink>" for symlinks); nullopt if dir is absent.
inline std::optional<Tree> ReadTree(const std::string& dir) {
  if (!Exists(dir)) return std::nullopt;
  Tree t;
  for (auto it = std::filesystem::recursive_directory_iterator(dir); it != std::filesystem::recursive_directory_iterator();
       ++it) {
    std::string rel = std::filesystem::relative(it->path(), dir).string();
    if (it->is_symlink())
      t[rel] = "<symlink>";
    else if (it->is_regular_file())
      t[rel] = Slurp(it->path().string());
  }
  return t;
}

inline std::string ModelDir(const std::string& root) { return root + "/models/acme/tiny-model"; }

// The scenario under test: materialize `t` and write the marker.
inline Status Scenario(FileSystem* fsys, const std::string& root, const Tree& t) {
  MS_ASSIGN_OR_RETURN(auto r, fsys->OpenRoot(root, false));
  MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*r));
  Materializer m(*r, *blobs);
  MS_RETURN_IF_ERROR(m.Materialize(kRepo, Files(t)));
  return m.WriteMarker("tiny-model");
}

inline bool NoLeftovers(const std::string& root) {
  return !Exists(root + "/models/acme/.tiny-model.staging") &&
         !Exists(root + "/models/acme/.tiny-model.old");
}

// After an interrupted update: the model dir is wholly old or wholly new. Where the swap is two
// renames (the posix build: docs/PLATFORM.md "The revision swap"), also: absent, with the old
// tree whole at .tiny-model.old (the next Materialize or CleanStaging puts it back).
inline bool OldOrNew(const std::string& root) {
  auto tree = ReadTree(ModelDir(root));
  if (tree == V1() || tree == V2()) return true;
  return !tree && std::string(platform::Name()) == "posix" &&
         ReadTree(root + "/models/acme/.tiny-model.old") == V1();
}


}  // namespace modelsync::testing::trees
