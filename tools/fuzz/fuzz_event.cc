// libFuzzer target: event decoding (proto/codec.h DecodeEvent) and the fold of decoded
// events into the state (engine/state.h State::Apply), as Journal replays the log.
// Input: a sequence of chunks (2-byte little-endian length, then the payload), each the
// payload of one log record.
// Invariants: DecodeEvent gives Ok, kCorruption or kVersion (never a crash); an accepted
// event has a known kind and decode -> encode -> decode -> encode is stable; folding any
// accepted events keeps every transfer's ranges sorted and disjoint and last_seq at the
// last seq; the state's snapshot loads back to the same bytes (snapshot == replay).
#include <google/protobuf/stubs/logging.h>
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/state.h"
#include "fuzz_check.h"
#include "proto/codec.h"

namespace {

using modelsync::StatusCode;
using modelsync::fuzz::Input;
namespace proto = modelsync::proto;
namespace engine = modelsync::engine;

void CheckState(const engine::State& s, uint64_t seq) {
  FUZZ_CHECK(s.last_seq == seq);
  for (const auto& [id, t] : s.transfers) {
    FUZZ_CHECK(t.id == id);
    const auto& r = t.committed.ranges();
    for (size_t i = 0; i < r.size(); ++i) {
      FUZZ_CHECK(r[i].begin < r[i].end);
      if (i > 0) FUZZ_CHECK(r[i - 1].end < r[i].begin);
    }
  }
}

}  // namespace

// protobuf logs every string field with invalid UTF-8 it refuses; that is expected here
// and would only slow the run down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  engine::State state;
  uint64_t seq = 0;
  while (!in.empty()) {
    std::string_view payload = in.Chunk();
    proto::Event e;
    modelsync::Status s = proto::DecodeEvent(payload, &e);
    if (!s.ok()) {
      FUZZ_CHECK(s.code() == StatusCode::kCorruption || s.code() == StatusCode::kVersion);
      FUZZ_CHECK(!s.message().empty());
      continue;
    }
    FUZZ_CHECK(proto::EventKindName(e) != "Unknown");
    const std::string once = proto::EncodeEvent(e);
    proto::Event e2;
    FUZZ_CHECK(proto::DecodeEvent(once, &e2).ok());
    FUZZ_CHECK(proto::EncodeEvent(e2) == once);
    state.Apply(++seq, e);
    CheckState(state, seq);
  }
  const std::string snap = state.ToSnapshotBytes();
  engine::State loaded;
  FUZZ_CHECK(loaded.LoadSnapshotBytes(snap).ok());
  FUZZ_CHECK(loaded.ToSnapshotBytes() == snap);
  FUZZ_CHECK(loaded.Digest() == state.Digest());
  return 0;
}
