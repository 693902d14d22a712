// Benchmark of the event log against raw LMDB on the same machine, in the same run.
//
//   build/tools/bench_event_log [--events N] [--singles N] [--dir DIR]
//
// Measures (N RangesCommitted events, default 1,000,000):
//   batched append   1,000 events per durable write transaction
//   single commits   one event per durable write transaction
//   full replay      EventLog::Replay of all N (checksum + decode + protobuf parse)
//   replay + fold    the same, folded into engine::State
//   bytes per range  data.mdb size / N
// and the same shapes on raw LMDB (8-byte big-endian keys, 16-byte values, MDB_APPEND), so the
// figures read as ratios. Not a test: run it by hand, once.
#include <lmdb.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/state.h"
#include "storage/event_log.h"
#include "storage/record_format.h"

using namespace modelsync;
using Clock = std::chrono::steady_clock;

namespace {

double Secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

v1::Event Range(uint64_t i) {
  v1::Event e;
  e.set_time_ms(1'764'100'000'000 + static_cast<int64_t>(i));
  auto* r = e.mutable_ranges_committed();
  r->set_transfer_id(1 + i / 1024);  // 8 GiB per transfer in 8 MiB ranges
  auto* br = r->add_ranges();
  br->set_begin((i % 1024) * 8'388'608);
  br->set_end((i % 1024 + 1) * 8'388'608);
  return e;
}

uint64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "bench_event_log: %s\n", what.c_str());
  std::exit(1);
}

struct Row {
  const char* what;
  double ours, raw;
  const char* unit;
  const char* target;
};

struct RawLmdb {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  explicit RawLmdb(const std::string& dir) {
    if (std::system(("mkdir -p '" + dir + "'").c_str()) != 0) Die("mkdir " + dir);
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, size_t{4} << 30);
    if (mdb_env_open(env, dir.c_str(), 0, 0644) != 0) Die("mdb_env_open " + dir);
    MDB_txn* t;
    mdb_txn_begin(env, nullptr, 0, &t);
    mdb_dbi_open(t, nullptr, 0, &dbi);
    mdb_txn_commit(t);
  }
  ~RawLmdb() { mdb_env_close(env); }
  void Put(uint64_t from, uint64_t n) {
    MDB_txn* t;
    if (mdb_txn_begin(env, nullptr, 0, &t) != 0) Die("raw txn");
    char k[8], v[16] = {};
    for (uint64_t i = from; i < from + n; ++i) {
      storage::PutSeqKey(i, k);
      std::memcpy(v, &i, 8);
      MDB_val kv{8, k}, vv{16, v};
      if (mdb_put(t, dbi, &kv, &vv, MDB_APPEND) != 0) Die("raw put");
    }
    if (mdb_txn_commit(t) != 0) Die("raw commit");
  }
  uint64_t Scan() {
    MDB_txn* t;
    mdb_txn_begin(env, nullptr, MDB_RDONLY, &t);
    MDB_cursor* c;
    mdb_cursor_open(t, dbi, &c);
    MDB_val k, v;
    uint64_t sum = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      uint64_t x;
      std::memcpy(&x, v.mv_data, 8);
      sum += x;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return sum;
  }
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 1'000'000, singles = 1000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--events")
      n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--singles")
      singles = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--dir")
      dir = argv[i + 1];
    else
      Die("usage: bench_event_log [--events N] [--singles N] [--dir DIR]");
  }
  if (dir.empty()) {
    char tmpl[] = "/tmp/ms_bench_XXXXXX";
    if (!::mkdtemp(tmpl)) Die("mkdtemp");
    dir = tmpl;
  }
  const uint64_t kBatch = 1000;
  std::vector<Row> rows;

  // Both logs are open at once and the write phases alternate batch by batch (and commit by
  // commit), so a disk shared with other work slows both sides alike and the ratio holds.
  std::string root = dir + "/root";
  double ours_batch, ours_batch_all, ours_single, ours_replay, ours_fold, ours_bytes;
  double raw_batch, raw_single, raw_scan, raw_bytes;
  {
    auto log = storage::EventLog::Open(root, storage::EventLog::Mode::kReadWrite);
    if (!log.ok()) Die(log.status().ToString());
    RawLmdb raw(dir + "/raw");
    std::vector<v1::Event> batch;
    double build = 0, append = 0, raw_put = 0;
    for (uint64_t b = 0; b < n; b += kBatch) {
      uint64_t m = std::min(kBatch, n - b);
      auto t0 = Clock::now();
      batch.clear();
      for (uint64_t i = b; i < b + m; ++i) batch.push_back(Range(i));
      build += Secs(t0);  // building the protobuf objects is the caller's cost
      t0 = Clock::now();
      auto r = (*log)->Append(batch);
      if (!r.ok()) Die(r.status().ToString());
      append += Secs(t0);
      t0 = Clock::now();
      raw.Put(b + 1, m);
      raw_put += Secs(t0);
    }
    ours_batch = static_cast<double>(n) / append;
    ours_batch_all = static_cast<double>(n) / (append + build);
    raw_batch = static_cast<double>(n) / raw_put;
    ours_bytes = static_cast<double>(FileBytes(storage::LogDir(root) + "/data.mdb")) /
                 static_cast<double>(n);
    raw_bytes = static_cast<double>(FileBytes(dir + "/raw/data.mdb")) / static_cast<double>(n);

    auto t0 = Clock::now();
    uint64_t count = 0;
    Status s = (*log)->Replay(0, [&](uint64_t, const v1::Event& e) {
      count += e.ranges_committed().ranges_size();
      return Status::Ok();
    });
    ours_replay = static_cast<double>(n) / Secs(t0);
    if (!s.ok() || count != n) Die("replay: " + s.ToString());
    t0 = Clock::now();
    volatile uint64_t sink = raw.Scan();
    (void)sink;
    raw_scan = static_cast<double>(n) / Secs(t0);

    engine::State state;
    for (uint64_t id = 1; id <= 1 + n / 1024; ++id) state.transfers[id].id = id;
    t0 = Clock::now();
    s = (*log)->Replay(0, [&](uint64_t seq, const v1::Event& e) {
      state.Apply(seq, e);
      return Status::Ok();
    });
    ours_fold = static_cast<double>(n) / Secs(t0);
    if (!s.ok() || state.anomalies != 0) Die("fold: " + s.ToString());

    double single = 0, raw_one = 0;
    for (uint64_t i = 0; i < singles; ++i) {
      t0 = Clock::now();
      auto r = (*log)->Append({Range(n + i)});
      if (!r.ok()) Die(r.status().ToString());
      single += Secs(t0);
      t0 = Clock::now();
      raw.Put(n + 1 + i, 1);
      raw_one += Secs(t0);
    }
    ours_single = static_cast<double>(singles) / single;
    raw_single = static_cast<double>(singles) / raw_one;
  }

  std::printf("event log benchmark: %llu RangesCommitted events, %llu single commits, dir %s\n\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(singles),
              dir.c_str());
  std::printf("%-34s %14s %14s %7s  %s\n", "measure", "modelsync", "raw LMDB", "ratio", "target");
  auto row = [](const char* what, double ours, double raw, const char* unit, const char* target) {
    std::printf("%-34s %14.0f %14.0f %6.2fx  %s (%s)\n", what, ours, raw, ours / raw, target, unit);
  };
  row("batched append (1,000/txn, fsync)", ours_batch, raw_batch, "events/s", ">= 500,000");
  std::printf("%-34s %14.0f %14s %7s  %s\n", "  the same, counting event building", ours_batch_all,
              "-", "", "events/s");
  row("single-event durable commits", ours_single, raw_single, "commits/s", "-");
  row("full replay (checked + parsed)", ours_replay, raw_scan, "events/s", ">= 2,000,000");
  std::printf("%-34s %14.0f %14s %7s  %s\n", "replay + fold into engine::State", ours_fold, "-", "",
              "events/s");
  std::printf("%-34s %14.1f %14.1f %6.2fx  %s\n", "on-disk bytes per committed range", ours_bytes,
              raw_bytes, ours_bytes / raw_bytes, "<= 64 bytes");
  std::printf("\nreplay of %llu events took %.3f s (target < 0.5 s for 1,000,000)\n",
              static_cast<unsigned long long>(n), static_cast<double>(n) / ours_replay);
  std::printf("rerun: build/tools/bench_event_log --events %llu --singles %llu\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(singles));
  if (std::getenv("BENCH_KEEP") == nullptr) (void)!std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
