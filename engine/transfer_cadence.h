// When the transfer runner makes bytes durable, adopts small files, and tidies the page
// cache: pure decisions over numbers (no I/O, no clock of their own), so they are tested
// alone (tests/planner_test.cc "cadence") and the runner only carries them out.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "base/byte_range.h"
#include "base/clock.h"

namespace modelsync::engine {

// Durability: a transfer's written bytes are synced and recorded (write -> fdatasync ->
// RangesCommitted) once this many are waiting, or this long after the last sync, or when
// nothing of it is in flight any more; so a kill loses about half a second of transfer.
inline constexpr uint64_t kSyncBytes = 64ull << 20;
inline constexpr std::chrono::milliseconds kSyncInterval{500};

inline bool SyncDue(uint64_t unsynced, Clock::Duration since_last_sync, bool fetching) {
  return unsynced > 0 && (unsynced >= kSyncBytes || since_last_sync >= kSyncInterval || !fetching);
}

// Small verified files are adopted (one sync for the batch) once this many wait, or the
// oldest has waited this long, or nothing else is left to do. While an adoption is still
// queued or running (`adopting`), the next one waits for it (group commit): the files
// verified during one sync share the next, so a fast link makes a few large batches instead
// of one sync per 128 files (601 small files on loopback: 5 syncs -> 3). The last batch
// (all_done) goes at once.
inline constexpr size_t kSmallBatchFiles = 128;
inline constexpr std::chrono::milliseconds kSmallBatchAge{100};

inline bool SmallBatchDue(size_t files, Clock::Duration age, bool all_done, bool adopting) {
  if (files == 0) return false;
  if (all_done) return true;
  return !adopting && (files >= kSmallBatchFiles || age >= kSmallBatchAge);
}

// Page-cache hygiene for large partial files (PERF in transfer_runner.h), hints only: start
// writeback every kWritebackBytes written; drop the pages that are both hashed and durable in
// steps of kDropBytes, so a long download reuses a small set of pages.
inline constexpr uint64_t kWritebackBytes = 8ull << 20;
inline constexpr uint64_t kDropBytes = 8ull << 20;

inline bool WritebackDue(uint64_t written, uint64_t written_at_last_kick) {
  return written - written_at_last_kick >= kWritebackBytes;
}

// The range whose pages may be dropped now ({dropped, dropped} when none): below both the
// durable prefix and the hashed prefix, from where the last drop ended, in kDropBytes steps.
inline ByteRange DroppableRange(uint64_t durable_prefix, uint64_t hashed, uint64_t dropped) {
  uint64_t upto = durable_prefix < hashed ? durable_prefix : hashed;
  if (upto < dropped + kDropBytes) return {dropped, dropped};
  return {dropped, upto};
}

}  // namespace modelsync::engine
