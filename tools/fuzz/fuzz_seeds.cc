// fuzz_seeds OUT_DIR: writes the binary seed corpora of fuzz_event, fuzz_record and
// fuzz_snapshot into OUT_DIR/{event,record,snapshot}/ with the real encoders: a realistic
// pull (track, resolve, transfers with ranges, a failure, materialize, activate, marker),
// then a removal. tools/fuzz/make_corpus.sh runs it; the output is committed.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "engine/state.h"
#include "proto/codec.h"
#include "storage/record_format.h"

namespace {

using modelsync::v1::Event;

const std::string kRepo = "org/model";
const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kSha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const std::string kOid = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";

std::vector<Event> Pull() {
  std::vector<Event> out;
  auto add = [&](int64_t t) -> Event& {
    out.emplace_back();
    out.back().set_time_ms(1'700'000'000'000 + t);
    return out.back();
  };
  auto* tr = add(1).mutable_repo_tracked();
  tr->set_repo(kRepo);
  tr->set_ref("main");
  tr->set_model_id("model");
  tr->add_include("*.safetensors");
  tr->add_exclude("*.bin");
  tr->set_every_ms(3'600'000);
  tr->set_endpoint("https://huggingface.co");
  auto* rr = add(2).mutable_revision_resolved();
  rr->set_repo(kRepo);
  rr->set_ref("main");
  rr->set_commit(kCommit);
  rr->set_endpoint("https://huggingface.co");
  for (const char* p : {"config.json", "model.safetensors", "sub/dir/tokenizer.json"}) {
    auto* f = rr->mutable_manifest()->add_files();
    f->set_path(p);
    f->set_size(std::string(p) == "model.safetensors" ? 1 << 20 : 120);
    f->set_git_oid(kOid);
    if (std::string(p) == "model.safetensors") f->set_lfs_sha256(kSha);
  }
  auto* ts = add(3).mutable_transfer_started();
  ts->set_transfer_id(1);
  ts->set_repo(kRepo);
  ts->set_commit(kCommit);
  ts->set_path("model.safetensors");
  ts->set_content_id(kSha);
  ts->set_size(1 << 20);
  ts->set_lfs(true);
  auto* rc = add(4).mutable_ranges_committed();
  rc->set_transfer_id(1);
  auto* r = rc->add_ranges();
  r->set_begin(0);
  r->set_end(65536);
  r = rc->add_ranges();
  r->set_begin(131072);
  r->set_end(262144);
  auto* ts2 = add(5).mutable_transfer_started();
  *ts2 = *ts;
  ts2->set_transfer_id(2);
  ts2->set_path("config.json");
  ts2->set_content_id(kOid);
  ts2->set_size(120);
  ts2->set_lfs(false);
  auto* tf = add(6).mutable_transfer_failed();
  tf->set_transfer_id(2);
  tf->set_reason("the hub answered HTTP 500 for org/model@main: config.json: retry later");
  tf->set_code(3);
  auto* bv = add(7).mutable_blob_verified();
  bv->set_transfer_id(1);
  bv->set_content_id(kSha);
  bv->set_size(1 << 20);
  auto* fm = add(8).mutable_file_materialized();
  fm->set_repo(kRepo);
  fm->set_commit(kCommit);
  fm->set_path("model.safetensors");
  fm->set_content_id(kSha);
  auto* ra = add(9).mutable_revision_activated();
  ra->set_repo(kRepo);
  ra->set_commit(kCommit);
  ra->set_model_id("model");
  ra->set_ref("main");
  ra->add_include("*.safetensors");
  auto* mw = add(10).mutable_marker_written();
  mw->set_repo(kRepo);
  mw->set_model_id("model");
  auto* sf = add(11).mutable_sync_failed();
  sf->set_repo(kRepo);
  sf->set_reason("disk full while writing model.safetensors: free space and retry");
  sf->set_code(5);
  auto* fr = add(12).mutable_file_removed();
  fr->set_repo(kRepo);
  fr->set_commit(kCommit);
  fr->set_path("model.safetensors");
  auto* mr = add(13).mutable_marker_removed();
  mr->set_repo(kRepo);
  mr->set_model_id("model");
  add(14).mutable_repo_untracked()->set_repo(kRepo);
  return out;
}

std::string Chunk(const std::string& payload) {
  std::string out;
  out.push_back(static_cast<char>(payload.size() & 0xFF));
  out.push_back(static_cast<char>((payload.size() >> 8) & 0xFF));
  return out + payload;
}

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
    return 2;
  }
  const std::string out = argv[1];
  for (const char* d : {"event", "record", "snapshot"}) {
    if (auto s = modelsync::MakeDirs(out + "/" + d); !s.ok()) {
      std::fprintf(stderr, "fuzz_seeds: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const std::vector<Event> events = Pull();
  modelsync::storage::RecordCodec codec;
  modelsync::engine::State state;
  std::string all;
  bool ok = true;
  for (size_t i = 0; i < events.size(); ++i) {
    const std::string payload = modelsync::proto::EncodeEvent(events[i]);
    const std::string name(modelsync::proto::EventKindName(events[i]));
    ok &= Write(out + "/event/" + name, Chunk(payload));
    all += Chunk(payload);
    std::string value;
    const uint64_t seq = i + 1;
    codec.Encode(modelsync::storage::SeqKey(seq), payload, &value);
    // [flags][seq byte][value]: flags 0 keeps the CRC as written.
    ok &= Write(out + "/record/" + name, std::string("\0", 1) + static_cast<char>(seq) + value);
    state.Apply(seq, events[i]);
    if (i == 8 || i + 1 == events.size()) {
      ok &= Write(out + "/snapshot/after_" + name, state.ToSnapshotBytes());
    }
  }
  ok &= Write(out + "/event/pull_sequence", all);
  // A compressed record (payload >= kMinCompressBytes and compressible): the zstd path.
  Event big = events[1];
  for (int i = 0; i < 40; ++i) {
    auto* f = big.mutable_revision_resolved()->mutable_manifest()->add_files();
    f->set_path("shard-" + std::to_string(i) + ".safetensors");
    f->set_size(1u << 30);
    f->set_git_oid(kOid);
    f->set_lfs_sha256(kSha);
  }
  std::string value;
  codec.Encode(modelsync::storage::SeqKey(200), modelsync::proto::EncodeEvent(big), &value);
  if (value[4] != static_cast<char>(modelsync::storage::kCodecZstd)) {
    std::fprintf(stderr, "fuzz_seeds: the big record was not compressed\n");
    return 1;
  }
  ok &= Write(out + "/record/zstd_manifest", std::string("\0", 1) + static_cast<char>(200) + value);
  ok &= Write(out + "/record/zstd_manifest_fixcrc",
              std::string("\1", 1) + static_cast<char>(200) + value);
  if (!ok) {
    std::fprintf(stderr, "fuzz_seeds: cannot write under %s\n", out.c_str());
    return 1;
  }
  return 0;
}
