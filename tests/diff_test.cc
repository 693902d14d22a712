// DiffRevisions: the pure revision diff behind `modelsync diff`.
#include <doctest/doctest.h>

#include <string>

#include "engine/diff_revisions.h"
#include "engine/planner.h"

using namespace modelsync;
using namespace modelsync::engine;

namespace {

std::string Id(char c, size_t n = 40) { return std::string(n, c); }

v1::FileEntry File(const std::string& path, const std::string& id, uint64_t size) {
  v1::FileEntry f;
  f.set_path(path);
  if (id.size() == 64) {
    f.set_lfs_sha256(id);
    f.set_git_oid(Id('f'));
  } else {
    f.set_git_oid(id);
  }
  f.set_size(size);
  return f;
}

const FileChange* Find(const RevisionDiff& d, const std::string& path) {
  for (const auto& c : d.changes)
    if (c.path == path) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("diff classifies added, modified, removed, renamed and unchanged files") {
  State st;
  st.blobs[Id('a')] = 10;
  st.blobs[Id('b')] = 20;
  st.blobs[Id('c')] = 30;
  st.blobs[Id('w', 64)] = 1000;
  std::vector<v1::FileEntry> from = {File("README.md", Id('a'), 10), File("notes.txt", Id('b'), 20),
                                     File("old/name.json", Id('c'), 30),
                                     File("model.safetensors", Id('w', 64), 1000)};
  std::vector<v1::FileEntry> to = {
      File("README.md", Id('d'), 11), File("new/name.json", Id('c'), 30),
      File("model.safetensors", Id('w', 64), 1000), File("generation_config.json", Id('e'), 5)};
  RevisionDiff d = DiffRevisions(from, to, st, "org/m");
  CHECK(d.added == 1);
  CHECK(d.modified == 1);
  CHECK(d.removed == 1);
  CHECK(d.renamed == 1);
  CHECK(d.unchanged == 1);
  CHECK(d.changes.size() == 5);
  REQUIRE(Find(d, "new/name.json"));
  CHECK(Find(d, "new/name.json")->kind == ChangeKind::kRenamed);
  CHECK(Find(d, "new/name.json")->old_path == "old/name.json");
  CHECK_FALSE(Find(d, "new/name.json")->needs_fetch);
  CHECK(Find(d, "old/name.json") == nullptr);  // reported once, as the rename
  CHECK(Find(d, "notes.txt")->kind == ChangeKind::kRemoved);
  CHECK(Find(d, "README.md")->kind == ChangeKind::kModified);
  CHECK(Find(d, "README.md")->old_size == 10);
  CHECK(Find(d, "model.safetensors")->kind == ChangeKind::kUnchanged);
  CHECK(Find(d, "generation_config.json")->kind == ChangeKind::kAdded);
  CHECK(d.fetch_bytes == 11 + 5);  // the weights and the renamed file cost nothing
  CHECK(d.free_bytes == 10 + 20);  // old README and notes.txt
  CHECK(d.to_bytes == 11 + 30 + 1000 + 5);
  CHECK_FALSE(d.Identical());
  for (size_t i = 1; i < d.changes.size(); ++i) CHECK(d.changes[i - 1].path < d.changes[i].path);
}

TEST_CASE("diff counts shared content once and keeps what another repo uses") {
  State st;
  st.blobs[Id('a')] = 10;
  st.repos["org/other"].materialized["x"] = Id('a');
  std::vector<v1::FileEntry> from = {File("a.txt", Id('a'), 10)};
  std::vector<v1::FileEntry> to = {File("b.txt", Id('n'), 7), File("c.txt", Id('n'), 7),
                                   File("d.txt", Id('a'), 10), File("e.txt", Id('a'), 10)};
  RevisionDiff d = DiffRevisions(from, to, st, "org/m");
  CHECK(d.fetch_bytes == 7);  // two paths, one content id
  CHECK(d.renamed == 1);      // a.txt pairs with one new path only
  CHECK(d.added == 3);
  CHECK(d.removed == 0);
  CHECK(d.free_bytes == 0);
  // Dropping the content from `to` frees nothing either: org/other still uses it.
  RevisionDiff gone = DiffRevisions(from, {}, st, "org/m");
  CHECK(gone.removed == 1);
  CHECK(gone.free_bytes == 0);
  st.repos.erase("org/other");
  CHECK(DiffRevisions(from, {}, st, "org/m").free_bytes == 10);
}

TEST_CASE("diff of identical revisions and from nothing") {
  State st;
  std::vector<v1::FileEntry> files = {File("a", Id('1'), 3), File("b", Id('2'), 4)};
  RevisionDiff same = DiffRevisions(files, files, st, "org/m");
  CHECK(same.Identical());
  CHECK(same.unchanged == 2);
  CHECK(same.fetch_bytes == 7);  // nothing verified in this state
  st.blobs[Id('1')] = 3;
  st.blobs[Id('2')] = 4;
  CHECK(DiffRevisions(files, files, st, "org/m").fetch_bytes == 0);
  RevisionDiff fresh = DiffRevisions({}, files, st, "org/m");
  CHECK(fresh.added == 2);
  CHECK(fresh.free_bytes == 0);
}

TEST_CASE("ActiveFiles applies the active include and exclude") {
  RepoState rs;
  rs.active_commit = Id('c');
  rs.revisions[rs.active_commit].files = {File("a.json", Id('1'), 1), File("b.bin", Id('2'), 2),
                                          File("tok.json", Id('3'), 3)};
  rs.active_include = {"*.json"};
  rs.active_exclude = {"tok*"};
  auto f = ActiveFiles(rs);
  REQUIRE(f.size() == 1);
  CHECK(f[0].path() == "a.json");
  rs.active_commit.clear();
  CHECK(ActiveFiles(rs).empty());
}

TEST_CASE("planner: a crash between the swap and RevisionActivated keeps the marker") {
  // The log says v1 (a.txt) is active with its marker; the disk already holds v2 (b.txt).
  State st;
  RepoState& rs = st.repos["org/m"];
  rs.repo = "org/m";
  rs.active_commit = Id('1');
  rs.materialized["a.txt"] = Id('a');
  rs.model_id = "m";
  rs.marker = true;
  st.blobs[Id('a')] = 3;
  st.blobs[Id('b')] = 4;
  Observation obs;
  obs.blobs = {{Id('a'), 3}, {Id('b'), 4}};
  obs.model_dir_exists = true;
  obs.model_files["b.txt"] = {ObservedFile::Type::kFile, 4, Id('b')};
  obs.markers = {"m"};
  PlanInput in;
  in.repo = "org/m";
  in.commit = Id('2');
  in.model_id = "m";
  in.files = {File("b.txt", Id('b'), 4)};
  auto plan = MakePlan(in, st, obs);
  REQUIRE(plan.ok());
  CHECK(plan->remove_markers.empty());
  CHECK_FALSE(plan->write_marker);
  CHECK(plan->activate);
  CHECK(plan->fetch_bytes == 0);
  // The disk at neither revision: the marker goes.
  obs.model_files.erase("b.txt");
  auto broken = MakePlan(in, st, obs);
  REQUIRE(broken.ok());
  CHECK(broken->remove_markers == std::vector<std::string>{"m"});
}
