// libFuzzer target: loading a state snapshot (engine/state.h State::LoadSnapshotBytes), as
// Journal does with the log's snapshot record before replaying the tail.
// Input: the snapshot bytes (a serialized modelsync.v1.StateSnapshot).
// Invariants: Ok, kCorruption or kVersion, never a crash; an accepted snapshot, written
// back, loads to the same canonical bytes (load -> write -> load is a fixpoint), and a
// rejected one leaves the state untouched.
#include <google/protobuf/stubs/logging.h>
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/state.h"
#include "fuzz_check.h"

// protobuf logs every string field with invalid UTF-8 it refuses; that is expected here
// and would only slow the run down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace modelsync;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  engine::State s;
  s.last_seq = 7;
  const std::string before = s.ToSnapshotBytes();
  Status st = s.LoadSnapshotBytes(bytes);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == StatusCode::kCorruption || st.code() == StatusCode::kVersion);
    FUZZ_CHECK(s.ToSnapshotBytes() == before);
    return 0;
  }
  const std::string once = s.ToSnapshotBytes();
  engine::State t;
  FUZZ_CHECK(t.LoadSnapshotBytes(once).ok());
  FUZZ_CHECK(t.ToSnapshotBytes() == once);
  return 0;
}
