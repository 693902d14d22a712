// engine/planner: hand-written scenarios, then thousands of seeded random inputs checked
// against the plan's invariants, and a convergence check (executing a plan's effects and
// re-planning gives NothingToDo).
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include "engine/planner.h"

using namespace modelsync;
using namespace modelsync::engine;
using modelsync::v1::FileEntry;

namespace {

const std::string kRepo = "acme/model";
const std::string kC1(40, '1'), kC2(40, '2');

std::string Hex(std::mt19937_64& rng, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n, '0');
  for (auto& c : s) c = d[rng() % 16];
  return s;
}

FileEntry Entry(const std::string& path, const std::string& id, uint64_t size) {
  FileEntry e;
  e.set_path(path);
  e.set_size(size);
  if (id.size() == 64) {
    e.set_lfs_sha256(id);
    e.set_git_oid(std::string(40, 'e'));
  } else {
    e.set_git_oid(id);
  }
  return e;
}

// The effects a correct executor has after running `plan` to completion.
void Execute(const Plan& plan, State* state, Observation* obs) {
  RepoState& repo = state->repos[plan.repo];
  repo.repo = plan.repo;
  for (auto id : plan.discard_transfers) {
    state->transfers.erase(id);
    obs->partials.erase(id);
  }
  for (const auto& b : plan.remove_blobs) obs->blobs.erase(b);
  for (const auto& m : plan.remove_markers) obs->markers.erase(m);
  for (const auto& f : plan.files) {
    if (f.action == FileAction::kFetch || f.action == FileAction::kResume) {
      state->transfers.erase(f.transfer_id);
      obs->partials.erase(f.transfer_id);
    }
    state->blobs[f.content_id] = f.size;
    obs->blobs[f.content_id] = f.size;
  }
  state->next_transfer_id = std::max(state->next_transfer_id, plan.next_transfer_id);
  if (plan.build_dir) {
    obs->model_dir_exists = true;
    obs->model_files.clear();
    for (const auto& f : plan.files)
      obs->model_files[f.path] = ObservedFile{ObservedFile::Type::kFile, f.size, f.content_id};
  }
  obs->staging_exists = false;
  if (plan.activate) {
    repo.active_commit = plan.commit;
    repo.materialized.clear();
    for (const auto& f : plan.files) repo.materialized[f.path] = f.content_id;
  }
  if (plan.write_marker) {
    obs->markers.insert(plan.model_id);
    repo.marker = true;
    repo.model_id = plan.model_id;
  }
}

uint64_t Sum(const std::vector<ByteRange>& rs) {
  uint64_t n = 0;
  for (auto r : rs) n += r.size();
  return n;
}

// Every invariant the plan must satisfy for these inputs.
void CheckInvariants(const PlanInput& in, const State& state, const Observation& obs,
                     const PlanOptions& opts, const Plan& plan) {
  std::map<std::string, const FileEntry*> manifest;
  for (const auto& f : in.files) manifest[f.path()] = &f;
  // Every manifest file covered exactly once, in path order.
  REQUIRE(plan.files.size() == in.files.size());
  std::map<std::string, const FilePlan*> by_path;
  for (size_t i = 0; i < plan.files.size(); ++i) {
    const FilePlan& f = plan.files[i];
    if (i > 0) CHECK(plan.files[i - 1].path < f.path);
    REQUIRE(manifest.count(f.path));
    CHECK(f.content_id == ContentIdOf(*manifest[f.path]));
    CHECK(f.size == manifest[f.path]->size());
    by_path[f.path] = &f;
  }
  std::set<std::string> fetched_ids;
  std::set<uint64_t> used_transfers, new_transfers;
  uint64_t fetch = 0, allocate = 0, present = 0;
  std::set<std::string> seen_ids;
  for (const FilePlan& f : plan.files) {
    const auto ob = obs.blobs.find(f.content_id);
    const bool blob_ok = ob != obs.blobs.end() && ob->second == f.size;
    switch (f.action) {
      case FileAction::kIntact: {
        CHECK(blob_ok);
        auto m = obs.model_files.find(f.path);
        REQUIRE(m != obs.model_files.end());
        CHECK(m->second.type == ObservedFile::Type::kFile);
        CHECK(m->second.blob_id == f.content_id);
        CHECK(state.blobs.at(f.content_id) == f.size);
        CHECK(f.fetch.empty());
        break;
      }
      case FileAction::kLink:
        CHECK(f.fetch.empty());
        if (f.fetched_by.empty()) {
          CHECK(blob_ok);  // never fetches what a blob on disk has
        } else {
          CHECK_FALSE(blob_ok);
          REQUIRE(by_path.count(f.fetched_by));
          const FilePlan& src = *by_path[f.fetched_by];
          CHECK(src.content_id == f.content_id);
          CHECK((src.action == FileAction::kFetch || src.action == FileAction::kResume));
          CHECK(src.path < f.path);
        }
        break;
      case FileAction::kResume:
      case FileAction::kFetch: {
        CHECK_FALSE(blob_ok);
        CHECK(fetched_ids.insert(f.content_id).second);  // no content fetched twice
        CHECK(used_transfers.insert(f.transfer_id).second);
        RangeSet got;
        bool ranges_ok = true;  // one assertion per file keeps the count (and ASan time) sane
        for (size_t i = 0; i < f.fetch.size(); ++i) {
          ByteRange r = f.fetch[i];
          ranges_ok = ranges_ok && !r.empty() && r.end <= f.size &&
                      (opts.chunk_size == 0 || r.size() <= opts.chunk_size) &&
                      (i == 0 || f.fetch[i - 1].end <= r.begin);  // ordered and disjoint
          got.Add(r);
        }
        CHECK(ranges_ok);
        fetch += Sum(f.fetch);
        if (f.action == FileAction::kResume) {
          auto t = state.transfers.find(f.transfer_id);
          REQUIRE(t != state.transfers.end());
          CHECK(t->second.content_id == f.content_id);
          CHECK(t->second.size == f.size);
          REQUIRE(obs.partials.count(f.transfer_id));
          CHECK(obs.partials.at(f.transfer_id) == f.size);
          // Fetch exactly what was not committed: committed + fetch = the whole file.
          RangeSet all = t->second.committed;
          all.Add(got);
          CHECK(all.Missing(f.size).empty());
          bool no_refetch = true;  // never fetches a committed byte
          for (auto r : f.fetch)
            for (auto c : t->second.committed.ranges())
              no_refetch = no_refetch && (r.end <= c.begin || r.begin >= c.end);
          CHECK(no_refetch);
          CHECK(f.committed_bytes + Sum(f.fetch) == f.size);
          present += f.committed_bytes;
        } else {
          CHECK(state.transfers.count(f.transfer_id) == 0);
          CHECK(f.transfer_id >= state.next_transfer_id);
          CHECK(f.transfer_id < plan.next_transfer_id);
          new_transfers.insert(f.transfer_id);
          CHECK(Sum(f.fetch) == f.size);
          allocate += f.size;
        }
        break;
      }
    }
    if (blob_ok && seen_ids.insert(f.content_id).second) present += f.size;
    seen_ids.insert(f.content_id);
  }
  // Content that needs fetching is fetched by exactly one path.
  for (const FilePlan& f : plan.files) {
    const auto ob = obs.blobs.find(f.content_id);
    if (!(ob != obs.blobs.end() && ob->second == f.size)) CHECK(fetched_ids.count(f.content_id));
  }
  CHECK(new_transfers.size() == plan.next_transfer_id - state.next_transfer_id);
  // Totals add up.
  std::map<std::string, uint64_t> distinct;
  for (const auto& f : in.files) distinct[ContentIdOf(f)] = f.size();
  uint64_t total = 0;
  for (auto& [id, s] : distinct) total += s;
  CHECK(plan.total_bytes == total);
  CHECK(plan.fetch_bytes == fetch);
  CHECK(plan.allocate_bytes == allocate);
  CHECK(plan.present_bytes == present);
  CHECK(plan.total_bytes == plan.fetch_bytes + plan.present_bytes);
  // Transfers of needed content: each resumed or discarded, never both; others untouched.
  std::set<uint64_t> discard(plan.discard_transfers.begin(), plan.discard_transfers.end());
  CHECK(discard.size() == plan.discard_transfers.size());
  for (const auto& [id, t] : state.transfers) {
    bool needed = distinct.count(t.content_id) > 0;
    bool resumed = used_transfers.count(id) > 0;
    if (needed)
      CHECK(resumed != (discard.count(id) > 0));
    else
      CHECK_FALSE(discard.count(id));
  }
  // Removals are exactly the set difference.
  std::vector<std::string> want_removed;
  auto rit = state.repos.find(in.repo);
  if (rit != state.repos.end())
    for (const auto& [p, id] : rit->second.materialized)
      if (!manifest.count(p)) want_removed.push_back(p);
  CHECK(plan.removals == want_removed);
  // Bad blobs: exactly the needed ids whose blob size contradicts the manifest.
  for (const auto& id : plan.remove_blobs) {
    REQUIRE(obs.blobs.count(id));
    CHECK(obs.blobs.at(id) != distinct.at(id));
  }
  // The directory is left alone only when it is exactly the target.
  if (!plan.build_dir) {
    CHECK(obs.model_dir_exists);
    CHECK(plan.removals.empty());
    CHECK(obs.model_files.size() == in.files.size());
    for (const auto& f : plan.files) CHECK(f.action == FileAction::kIntact);
  }
  if (!plan.write_marker) {
    CHECK(obs.markers.count(in.model_id));
    CHECK(std::find(plan.remove_markers.begin(), plan.remove_markers.end(), in.model_id) ==
          plan.remove_markers.end());
  }
  for (const auto& m : plan.remove_markers) CHECK(obs.markers.count(m));
}

struct Case {
  PlanInput in;
  State state;
  Observation obs;
  PlanOptions opts;
};

Case RandomCase(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto coin = [&](int pct) { return static_cast<int>(rng() % 100) < pct; };
  Case c;
  c.in.repo = kRepo;
  c.in.commit = coin(50) ? kC1 : kC2;
  c.in.model_id = coin(80) ? "model" : "other";
  const uint64_t chunks[] = {0, 1, 7, 100, 1000, 1 << 20};
  c.opts.chunk_size = chunks[rng() % 6];

  // A pool of contents; sizes include 0 and odd values.
  std::vector<std::pair<std::string, uint64_t>> pool;
  int npool = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < npool; ++i)
    pool.push_back({Hex(rng, coin(50) ? 64 : 40), coin(10) ? 0 : rng() % 5000});
  const char* paths[] = {
      "config.json", "model.safetensors", "a/b.txt",   "a/c.txt",
      "tok.json",    "x/y/z.bin",         "README.md", "sub/model-2.safetensors"};
  for (const char* p : paths) {
    if (!coin(55)) continue;
    auto& [id, size] = pool[rng() % pool.size()];
    c.in.files.push_back(Entry(p, id, size));
  }
  std::shuffle(c.in.files.begin(), c.in.files.end(), rng);

  // State.
  c.state.next_transfer_id = 1 + rng() % 20;
  RepoState& repo = c.state.repos[kRepo];
  repo.repo = kRepo;
  if (coin(60)) {
    repo.active_commit = coin(50) ? kC1 : kC2;
    for (const char* p : paths)
      if (coin(40)) repo.materialized[p] = pool[rng() % pool.size()].first;
    repo.marker = coin(70);
    repo.model_id = coin(80) ? "model" : "old-model";
  }
  if (coin(30)) {
    RepoState& other = c.state.repos["acme/other"];
    for (const char* p : paths)
      if (coin(30)) other.materialized[p] = pool[rng() % pool.size()].first;
  }
  for (auto& [id, size] : pool) {
    if (coin(40)) c.state.blobs[id] = coin(90) ? size : size + 1;
    if (coin(40)) c.obs.blobs[id] = coin(85) ? size : size + 3;
  }
  int ntransfers = static_cast<int>(rng() % 5);
  for (int i = 0; i < ntransfers; ++i) {
    TransferState t;
    t.id = rng() % c.state.next_transfer_id;
    if (t.id == 0 || c.state.transfers.count(t.id)) continue;
    auto& [id, size] = pool[rng() % pool.size()];
    t.content_id = coin(85) ? id : Hex(rng, 64);
    t.size = coin(85) ? size : size + 10;
    t.repo = kRepo;
    int nr = static_cast<int>(rng() % 4);
    for (int k = 0; k < nr && t.size > 0; ++k) {
      uint64_t b = rng() % t.size, e = b + 1 + rng() % (t.size - b);
      t.committed.Add({b, e});
    }
    if (coin(30)) t.status = TransferState::Status::kFailed;
    if (coin(80)) c.obs.partials[t.id] = coin(85) ? t.size : t.size + 5;
    c.state.transfers[t.id] = t;
  }
  if (coin(20)) c.obs.partials[c.state.next_transfer_id + 100] = 7;  // an orphan

  // The model directory.
  c.obs.model_dir_exists = coin(60);
  if (c.obs.model_dir_exists) {
    for (const char* p : paths) {
      if (!coin(50)) continue;
      ObservedFile of;
      of.type = coin(90) ? ObservedFile::Type::kFile : ObservedFile::Type::kSymlink;
      auto& [id, size] = pool[rng() % pool.size()];
      of.size = size;
      of.blob_id = coin(80) ? id : "";
      c.obs.model_files[p] = of;
    }
    // Sometimes exactly right for the manifest.
    if (coin(30)) {
      c.obs.model_files.clear();
      for (const auto& f : c.in.files)
        c.obs.model_files[f.path()] = {ObservedFile::Type::kFile, f.size(), ContentIdOf(f)};
    }
  }
  for (const char* m : {"model", "other", "old-model"})
    if (coin(40)) c.obs.markers.insert(m);
  c.obs.staging_exists = coin(10);
  return c;
}

}  // namespace

TEST_CASE("planner: first pull fetches everything, split into chunks") {
  PlanInput in{kRepo,
               kC1,
               "model",
               {Entry("config.json", std::string(40, 'a'), 10),
                Entry("model.safetensors", std::string(64, 'b'), 250)}};
  State state;
  state.next_transfer_id = 5;
  auto plan = MakePlan(in, state, Observation{}, PlanOptions{100});
  REQUIRE(plan.ok());
  REQUIRE(plan->files.size() == 2);
  CHECK(plan->files[0].action == FileAction::kFetch);
  CHECK(plan->files[0].transfer_id == 5);
  CHECK(plan->files[1].transfer_id == 6);
  CHECK(plan->files[1].lfs);
  CHECK(plan->files[1].fetch == std::vector<ByteRange>{{0, 100}, {100, 200}, {200, 250}});
  CHECK(plan->fetch_bytes == 260);
  CHECK(plan->allocate_bytes == 260);
  CHECK(plan->next_transfer_id == 7);
  CHECK(plan->build_dir);
  CHECK(plan->activate);
  CHECK(plan->write_marker);
  CHECK(plan->remove_markers.empty());
}

// Issue 14: whether a file is fetched into memory is the planner's decision, not the
// executor's.
TEST_CASE("planner: files up to small_file_bytes are fetched into memory, larger ones through a partial") {
  PlanInput in{kRepo,
               kC1,
               "model",
               {Entry("config.json", std::string(40, 'a'), 10),
                Entry("model.safetensors", std::string(64, 'b'), 250),
                Entry("tokenizer.json", std::string(40, 'c'), 100)}};
  State state;
  PlanOptions po{100};
  po.small_file_bytes = 100;
  auto plan = MakePlan(in, state, Observation{}, po);
  REQUIRE(plan.ok());
  REQUIRE(plan->files.size() == 3);
  CHECK(plan->files[0].in_memory);        // 10 bytes
  CHECK_FALSE(plan->files[1].in_memory);  // 250 bytes
  CHECK(plan->files[2].in_memory);        // exactly the threshold
  po.small_file_bytes = 0;
  plan = MakePlan(in, state, Observation{}, po);
  REQUIRE(plan.ok());
  for (const auto& f : plan->files) CHECK_FALSE(f.in_memory);
}

TEST_CASE("planner: resume fetches only the uncommitted ranges") {
  const std::string id(64, 'c');
  PlanInput in{kRepo, kC1, "model", {Entry("w.safetensors", id, 1000)}};
  State state;
  state.next_transfer_id = 9;
  TransferState t;
  t.id = 3;
  t.content_id = id;
  t.size = 1000;
  t.committed.Add({0, 400});
  t.committed.Add({600, 700});
  state.transfers[3] = t;
  TransferState stale = t;
  stale.id = 4;
  stale.committed.Clear();
  state.transfers[4] = stale;
  Observation obs;
  obs.partials = {{3, 1000}, {4, 1000}};
  auto plan = MakePlan(in, state, obs, PlanOptions{0});
  REQUIRE(plan.ok());
  CHECK(plan->files[0].action == FileAction::kResume);
  CHECK(plan->files[0].transfer_id == 3);
  CHECK(plan->files[0].fetch == std::vector<ByteRange>{{400, 600}, {700, 1000}});
  CHECK(plan->files[0].committed_bytes == 500);
  CHECK(plan->discard_transfers == std::vector<uint64_t>{4});
  CHECK(plan->fetch_bytes == 500);
  CHECK(plan->present_bytes == 500);
  CHECK(plan->allocate_bytes == 0);
  // The partial on disk has the wrong size: start again.
  obs.partials[3] = 999;
  plan = MakePlan(in, state, obs, PlanOptions{0});
  REQUIRE(plan.ok());
  CHECK(plan->files[0].action == FileAction::kResume);
  CHECK(plan->files[0].transfer_id == 4);
  CHECK(plan->discard_transfers == std::vector<uint64_t>{3});
}

TEST_CASE("planner: an update fetches only changed content; renames and shared blobs are free") {
  const std::string w(64, 'd'), cfg1(40, '1'), cfg2(40, '2'), tok(40, 'e'), shared(40, 'f');
  State state;
  RepoState& repo = state.repos[kRepo];
  repo.repo = kRepo;
  repo.active_commit = kC1;
  repo.materialized = {{"config.json", cfg1}, {"old-name.json", tok}, {"w.safetensors", w}};
  repo.marker = true;
  repo.model_id = "model";
  state.repos["other/repo"].materialized = {{"x", shared}};
  state.blobs = {{w, 1000}, {cfg1, 10}, {tok, 20}, {shared, 30}};
  Observation obs;
  obs.blobs = state.blobs;
  obs.model_dir_exists = true;
  obs.model_files = {{"config.json", {ObservedFile::Type::kFile, 10, cfg1}},
                     {"old-name.json", {ObservedFile::Type::kFile, 20, tok}},
                     {"w.safetensors", {ObservedFile::Type::kFile, 1000, w}}};
  obs.markers = {"model"};
  PlanInput in{kRepo,
               kC2,
               "model",
               {Entry("config.json", cfg2, 11), Entry("new-name.json", tok, 20),
                Entry("w.safetensors", w, 1000), Entry("copy", shared, 30)}};
  auto plan = MakePlan(in, state, obs);
  REQUIRE(plan.ok());
  INFO(DescribePlan(*plan));
  CHECK(plan->fetch_bytes == 11);
  CHECK(plan->files[0].action == FileAction::kFetch);   // config.json
  CHECK(plan->files[1].action == FileAction::kLink);    // copy (shared with another repo)
  CHECK(plan->files[2].action == FileAction::kLink);    // new-name.json (renamed)
  CHECK(plan->files[3].action == FileAction::kIntact);  // w.safetensors
  CHECK(plan->removals == std::vector<std::string>{"old-name.json"});
  CHECK(plan->free_bytes == 10);  // cfg1 only: tok is still used
  CHECK(plan->build_dir);
  CHECK(plan->activate);
  CHECK(plan->remove_markers.empty());  // the old revision stays valid until the swap
  CHECK_FALSE(plan->write_marker);
}

TEST_CASE("planner: nothing to do when everything is in place; invalid inputs are refused") {
  const std::string a(40, 'a');
  State state;
  RepoState& repo = state.repos[kRepo];
  repo.active_commit = kC1;
  repo.materialized = {{"f", a}};
  repo.marker = true;
  repo.model_id = "model";
  state.blobs = {{a, 5}};
  Observation obs;
  obs.blobs = {{a, 5}};
  obs.model_dir_exists = true;
  obs.model_files = {{"f", {ObservedFile::Type::kFile, 5, a}}};
  obs.markers = {"model"};
  PlanInput in{kRepo, kC1, "model", {Entry("f", a, 5)}};
  auto plan = MakePlan(in, state, obs);
  REQUIRE(plan.ok());
  CHECK(plan->NothingToDo());
  in.files.push_back(Entry("f", a, 5));
  auto dup = MakePlan(in, state, obs);
  CHECK(dup.status().code() == StatusCode::kInvalidArgument);
  CHECK(dup.status().message().find("'f'") != std::string::npos);
  in.files = {Entry("f", "nothex", 5)};
  CHECK(MakePlan(in, state, obs).status().code() == StatusCode::kInvalidArgument);
  in.files = {Entry("f", a, 5), Entry("g", a, 6)};
  CHECK(MakePlan(in, state, obs).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE(
    "planner: seeded random inputs satisfy every invariant, deterministically, and converge") {
  const int kCases = 5000;
  int fetches = 0, resumes = 0, links = 0, intact = 0, noop_after = 0;
  for (int seed = 1; seed <= kCases; ++seed) {
    CAPTURE(seed);
    Case c = RandomCase(static_cast<uint64_t>(seed));
    auto plan = MakePlan(c.in, c.state, c.obs, c.opts);
    REQUIRE(plan.ok());
    CheckInvariants(c.in, c.state, c.obs, c.opts, *plan);
    // Deterministic, whatever the manifest's order.
    PlanInput reversed = c.in;
    std::reverse(reversed.files.begin(), reversed.files.end());
    auto again = MakePlan(reversed, c.state, c.obs, c.opts);
    REQUIRE(again.ok());
    CHECK(DescribePlan(*again) == DescribePlan(*plan));
    for (const auto& f : plan->files) {
      fetches += f.action == FileAction::kFetch;
      resumes += f.action == FileAction::kResume;
      links += f.action == FileAction::kLink;
      intact += f.action == FileAction::kIntact;
    }
    // Executing the plan's effects and planning again: nothing left to do.
    State s2 = c.state;
    Observation o2 = c.obs;
    Execute(*plan, &s2, &o2);
    auto next = MakePlan(c.in, s2, o2, c.opts);
    REQUIRE(next.ok());
    CHECK_MESSAGE(next->NothingToDo(), (DescribePlan(*plan) + "then\n" + DescribePlan(*next)));
    noop_after += next->NothingToDo();
  }
  MESSAGE(kCases << " random plans: fetch " << fetches << ", resume " << resumes << ", link "
                 << links << ", intact " << intact << "; converged " << noop_after);
  CHECK(fetches > 0);
  CHECK(resumes > 0);
  CHECK(links > 0);
  CHECK(intact > 0);
}
