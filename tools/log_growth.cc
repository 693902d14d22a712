// Log size and open time after many syncs, with and without a projection snapshot
// (issue #6: "a log that has seen a thousand syncs stays small and opens fast").
//
//   build/tools/log_growth [--syncs N] [--files F] [--dir DIR]
//
// Appends N realistic update syncs of one repo to a fresh root's log through engine::Journal
// (each sync: RevisionResolved with an F-file manifest at a new commit, two changed files
// each fetched as TransferStarted + 8 RangesCommitted + BlobVerified, F FileMaterialized,
// RevisionActivated, MarkerWritten: one durable Append per sync), then reports data.mdb size,
// the events in the log, and the time of Journal::Open (read-only: load + replay) three ways:
// plain; after Journal::WriteSnapshot(); after engine::Gc (what `modelsync gc` does: snapshot,
// drop the range events of finished transfers, rewrite the file compactly). Not a test: run
// it by hand.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "base/hash.h"
#include "engine/journal.h"
#include "engine/recovery.h"

using namespace modelsync;
using Steady = std::chrono::steady_clock;

namespace {

std::string Hex(const std::string& seed, size_t len) { return Sha256Hex(seed).substr(0, len); }

uint64_t FileSize(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

double OpenMs(const std::string& root, uint64_t* snap_seq) {
  auto t = Steady::now();
  auto j = engine::Journal::Open(root, true);
  double ms = std::chrono::duration<double, std::milli>(Steady::now() - t).count();
  if (!j.ok()) {
    std::fprintf(stderr, "open: %s\n", j.status().message().c_str());
    std::exit(1);
  }
  *snap_seq = (*j)->loaded_snapshot_seq();
  return ms;
}

// Events in the log; per kind, payload bytes into *by_kind when given.
uint64_t CountEvents(const std::string& root, std::map<std::string, uint64_t>* by_kind = nullptr) {
  uint64_t n = 0;
  Status s = engine::Journal::ScanLog(root, 1, [&](uint64_t, const v1::Event& e) {
    ++n;
    if (by_kind) {
      const auto* field = e.GetDescriptor()->FindFieldByNumber(static_cast<int>(e.kind_case()));
      (*by_kind)[field ? field->name() : "?"] += e.ByteSizeLong();
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    std::fprintf(stderr, "scan: %s\n", s.message().c_str());
    std::exit(1);
  }
  return n;
}

void Row(const char* name, const std::string& root, const std::string& mdb) {
  uint64_t seq = 0;
  double best = 1e18;
  for (int i = 0; i < 3; ++i) best = std::min(best, OpenMs(root, &seq));
  std::printf("%-18s %10.2f MiB %9llu %12.1f ms   (snapshot at #%llu)\n", name,
              static_cast<double>(FileSize(mdb)) / 1048576.0,
              static_cast<unsigned long long>(CountEvents(root)), best,
              static_cast<unsigned long long>(seq));
}

}  // namespace

int main(int argc, char** argv) {
  int syncs = 1000, files = 12;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--syncs"))
      syncs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--files"))
      files = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dir"))
      dir = argv[i + 1];
  }
  if (dir.empty()) {
    char tmpl[] = "/tmp/log_growth.XXXXXX";
    if (!::mkdtemp(tmpl)) return 1;
    dir = tmpl;
  }
  const std::string repo = "mlx-community/Bench-Model-4bit";
  uint64_t transfer = 1;
  auto t0 = Steady::now();
  {
    engine::JournalOptions jo;
    jo.snapshot_every = 0;  // only explicit snapshots
    auto j = engine::Journal::Open(dir, false, jo);
    if (!j.ok()) {
      std::fprintf(stderr, "open: %s\n", j.status().message().c_str());
      return 1;
    }
    for (int s = 0; s < syncs; ++s) {
      std::string commit = Hex("commit" + std::to_string(s), 40);
      std::vector<v1::Event> ev;
      v1::Event rr;
      auto* r = rr.mutable_revision_resolved();
      r->set_repo(repo);
      r->set_ref("main");
      r->set_commit(commit);
      r->set_endpoint("https://huggingface.co");
      std::vector<std::pair<std::string, std::string>> ids;
      for (int f = 0; f < files; ++f) {
        // Files 0 and 1 change every sync; the rest never do.
        std::string gen = f < 2 ? std::to_string(s) : "0";
        auto* fe = r->mutable_manifest()->add_files();
        fe->set_path(f == 0 ? "model.safetensors" : "file" + std::to_string(f) + ".json");
        fe->set_size(f == 0 ? 64ull << 20 : 4096);
        fe->set_git_oid(Hex("oid" + std::to_string(f) + gen, 40));
        if (f == 0) fe->set_lfs_sha256(Hex("lfs" + gen, 64));
        ids.push_back({fe->path(), f == 0 ? fe->lfs_sha256() : fe->git_oid()});
      }
      ev.push_back(rr);
      for (int f = 0; f < 2; ++f) {
        uint64_t id = transfer++;
        uint64_t size = f == 0 ? 64ull << 20 : 4096;
        v1::Event ts;
        auto* t = ts.mutable_transfer_started();
        t->set_transfer_id(id);
        t->set_repo(repo);
        t->set_commit(commit);
        t->set_path(ids[f].first);
        t->set_content_id(ids[f].second);
        t->set_size(size);
        t->set_lfs(f == 0);
        ev.push_back(ts);
        int ranges = f == 0 ? 8 : 1;
        for (int k = 0; k < ranges; ++k) {
          v1::Event rc;
          rc.mutable_ranges_committed()->set_transfer_id(id);
          auto* br = rc.mutable_ranges_committed()->add_ranges();
          br->set_begin(size / ranges * k);
          br->set_end(size / ranges * (k + 1));
          ev.push_back(rc);
        }
        v1::Event bv;
        bv.mutable_blob_verified()->set_transfer_id(id);
        bv.mutable_blob_verified()->set_content_id(ids[f].second);
        bv.mutable_blob_verified()->set_size(size);
        ev.push_back(bv);
      }
      for (const auto& [path, cid] : ids) {
        v1::Event fm;
        auto* m = fm.mutable_file_materialized();
        m->set_repo(repo);
        m->set_commit(commit);
        m->set_path(path);
        m->set_content_id(cid);
        ev.push_back(fm);
      }
      v1::Event ra;
      ra.mutable_revision_activated()->set_repo(repo);
      ra.mutable_revision_activated()->set_commit(commit);
      ra.mutable_revision_activated()->set_model_id("Bench-Model-4bit");
      ra.mutable_revision_activated()->set_ref("main");
      ev.push_back(ra);
      v1::Event mw;
      mw.mutable_marker_written()->set_repo(repo);
      mw.mutable_marker_written()->set_model_id("Bench-Model-4bit");
      ev.push_back(mw);
      auto a = (*j)->Append(std::move(ev));
      if (!a.ok()) {
        std::fprintf(stderr, "append: %s\n", a.status().message().c_str());
        return 1;
      }
    }
  }
  double append_s = std::chrono::duration<double>(Steady::now() - t0).count();
  std::string mdb = dir + "/.modelsync/log/data.mdb";
  std::printf("syncs %d, files per revision %d, append %.1f s\n", syncs, files, append_s);
  std::printf("%-18s %14s %9s %15s\n", "", "data.mdb", "events", "open (best of 3)");
  Row("plain", dir, mdb);
  std::map<std::string, uint64_t> by_kind;
  CountEvents(dir, &by_kind);
  std::printf("payload bytes by kind:");
  for (const auto& [kind, bytes] : by_kind)
    std::printf(" %s %.2f MiB;", kind.c_str(), static_cast<double>(bytes) / 1048576.0);
  std::printf("\n");
  {
    auto j = engine::Journal::Open(dir, false);
    if (!j.ok()) return 1;
    if (auto s = (*j)->WriteSnapshot(); !s.ok()) {
      std::fprintf(stderr, "snapshot: %s\n", s.message().c_str());
      return 1;
    }
  }
  Row("with snapshot", dir, mdb);
  engine::GcOptions go;
  go.root = dir;
  auto gc = engine::Gc(engine::RealEnv(), go);
  if (!gc.ok()) {
    std::fprintf(stderr, "gc: %s\n", gc.status().message().c_str());
    return 1;
  }
  Row("with compaction", dir, mdb);
  std::printf("gc dropped %llu events (~%.2f MiB of records)%s%s\n",
              static_cast<unsigned long long>(gc->events_compacted),
              static_cast<double>(gc->compacted_event_bytes) / 1048576.0,
              gc->log_rewritten ? ", file rewritten compactly" : "",
              gc->rewrite_error.empty() ? "" : (", rewrite failed: " + gc->rewrite_error).c_str());
  std::printf("root: %s\n", dir.c_str());
  return 0;
}
