// engine/transfer_state.h: the memory window's backpressure. A fetch the window refuses is
// paused by the Hub until TransferShared calls wake_sinks; these cases check that every way
// the hashed prefix can reach a refused fetch's block wakes it (a missed wake-up is a
// standstill: every fetch paused, nothing left to free a block).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/hash.h"
#include "engine/transfer_state.h"
#include "storage/file_system.h"
#include "storage/partial_file.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::engine;
using modelsync::testing::TempDir;

namespace {

// One transfer of `size` bytes into a real partial file, with the runner's threads.
struct Window {
  TempDir dir;
  std::unique_ptr<storage::Dir> root;
  std::unique_ptr<storage::PartialStore> store;
  FilePlan fp;
  TransferShared shared;
  Xfer* x = nullptr;
  std::atomic<int> wakes{0};

  explicit Window(uint64_t size) {
    auto r = storage::RealFileSystem()->OpenRoot(dir.path(), false);
    REQUIRE(r.ok());
    root = std::move(*r);
    auto s = storage::PartialStore::Open(*root);
    REQUIRE(s.ok());
    store = std::move(*s);
    fp.path = "model.safetensors";
    fp.size = size;
    fp.lfs = true;
    auto owned = std::make_unique<Xfer>();
    x = owned.get();
    x->fp = &fp;
    x->id = 1;
    auto f = store->Create(1, size);
    REQUIRE(f.ok());
    x->file = std::move(*f);
    x->hasher = std::make_unique<Hasher>(HashKind::kSha256, size);
    x->started = true;
    shared.xfers.push_back(std::move(owned));
    shared.MakePool(kWindowBlocks);
    shared.wake_sinks = [this] { ++wakes; };
    shared.hasher_thread = std::thread([this] { shared.HashLoop(); });
    for (int i = 0; i < kWriters; ++i)
      shared.writer_threads.emplace_back([this] { shared.WriteLoop(); });
  }
  TransferShared::Sink Sink(ByteRange r) {
    return TransferShared::Sink(&shared, x, r, SystemClock::Default());
  }
  bool Eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
  }
};

// The window's non-frontier blocks all held by fetches far ahead (each has a few bytes of its
// block), as when many paced fetches run at once.
void FillWindowAhead(Window& w, const std::string& bytes) {
  for (size_t i = 0; i < kWindowBlocks - kFrontierBlocks; ++i) {
    const uint64_t at = (16 + i) * kBlock;
    REQUIRE(w.shared.Stage(w.x, at, bytes.data(), 4096).ok());
  }
  std::lock_guard<std::mutex> lock(w.shared.mu);
  REQUIRE(w.shared.held() == kWindowBlocks - kFrontierBlocks);
}

}  // namespace

TEST_CASE("window: a refused fetch is woken when the hashed prefix reaches its block") {
  Window w(48 * kBlock);
  const std::string bytes(kBlock, 'm');
  FillWindowAhead(w, bytes);
  // The fetch of [1 MiB, 2 MiB) is refused: its next bytes need a new block, and the prefix
  // (nothing hashed yet) waits for block 0, not for its block.
  auto ahead = w.Sink({kBlock, 2 * kBlock});
  CHECK_FALSE(ahead.Ready(kBlock));  // (Sink::Ready is Admit)
  CHECK(w.wakes.load() == 0);

  SUBCASE("block 0 through the file: read back, no block freed") {
    // No block may be made for block 0: its first bytes are on the file already (a resumed
    // transfer's committed bytes), so the rest is written to the file too and hashed by
    // reading it back.
    REQUIRE(w.x->file->Write(0, std::string_view(bytes.data(), 4096)).ok());
    {
      std::lock_guard<std::mutex> lock(w.shared.mu);
      w.x->received.Add({0, 4096});
    }
    REQUIRE(w.shared.Stage(w.x, 4096, bytes.data(), kBlock - 4096).ok());
  }
  SUBCASE("block 0 through the window: written, hashed, freed") {
    REQUIRE(w.shared.Stage(w.x, 0, bytes.data(), kBlock).ok());  // (the frontier's reserve)
  }
  REQUIRE(w.Eventually([&] { return w.x->hashed.load() == kBlock; }));
  // Its block is the one the prefix waits for now: it is woken, and admitted.
  CHECK(w.Eventually([&] { return w.wakes.load() > 0; }));
  CHECK(ahead.Ready(kBlock));
}

TEST_CASE("window: a fetch asked again while refused is listed once") {
  Window w(48 * kBlock);
  const std::string bytes(kBlock, 'm');
  FillWindowAhead(w, bytes);
  auto ahead = w.Sink({kBlock, 2 * kBlock});
  for (int i = 0; i < 100; ++i) CHECK_FALSE(ahead.Ready(kBlock + 7));
  std::lock_guard<std::mutex> lock(w.shared.mu);
  CHECK(w.shared.refused.size() == 1);
}

TEST_CASE("window: on a far link (write_ahead) a fetch is never refused; its bytes go to the "
          "file and are hashed from there") {
  Window w(48 * kBlock);
  std::string bytes(2 * kBlock, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  FillWindowAhead(w, bytes);
  w.shared.write_ahead = true;
  auto ahead = w.Sink({kBlock, 2 * kBlock});
  REQUIRE(ahead.Ready(kBlock));
  REQUIRE(w.shared.Stage(w.x, kBlock, bytes.data() + kBlock, kBlock).ok());
  {
    std::lock_guard<std::mutex> lock(w.shared.mu);
    CHECK(w.shared.held() == kWindowBlocks - kFrontierBlocks);  // no block for it
    CHECK(w.x->received.Contains({kBlock, 2 * kBlock}));         // on the file
    CHECK(w.shared.refused.empty());
  }
  // Block 0 through the window: the prefix then runs on through the bytes on the file.
  REQUIRE(w.shared.Stage(w.x, 0, bytes.data(), kBlock).ok());
  REQUIRE(w.Eventually([&] { return w.x->hashed.load() == 2 * kBlock && !w.x->hash_busy.load(); }));
  REQUIRE(w.Eventually([&] {  // block 0 is hashed from memory while the writers write it
    std::lock_guard<std::mutex> lock(w.shared.mu);
    return w.x->received.Contains({0, 2 * kBlock});
  }));
  std::string back;
  REQUIRE(w.x->file->Read(0, 2 * kBlock, &back).ok());
  CHECK(back == bytes);
  // What was hashed is those bytes: the same hash as theirs, the same rest added to both.
  const std::string rest(46 * kBlock, 'r');
  Hasher expect(HashKind::kSha256, 48 * kBlock);
  expect.Update(bytes);
  expect.Update(rest);
  w.x->hasher->Update(rest);
  CHECK(w.x->hasher->FinishHex() == expect.FinishHex());
}

TEST_CASE("window: on a far link a new block ahead takes the place of the written block "
          "furthest ahead, which is read back when the prefix reaches it") {
  Window w(48 * kBlock);
  std::string bytes(48 * kBlock, '\0');
  for (size_t i = 0; i < bytes.size(); i += 64) bytes[i] = static_cast<char>(i / 64 * 131 % 251);
  w.shared.write_ahead = true;
  // The window's non-frontier blocks all whole and written: blocks 8 to 31.
  for (uint64_t blk = 8; blk < 32; ++blk)
    REQUIRE(w.shared.Stage(w.x, blk * kBlock, bytes.data() + blk * kBlock, kBlock).ok());
  REQUIRE(w.Eventually([&] {
    std::lock_guard<std::mutex> lock(w.shared.mu);
    return w.x->received.Contains({8 * kBlock, 32 * kBlock});
  }));
  // Block 40 gets a block all the same: block 31's is given up (it is on the file).
  REQUIRE(w.shared.Stage(w.x, 40 * kBlock, bytes.data() + 40 * kBlock, kBlock).ok());
  {
    std::lock_guard<std::mutex> lock(w.shared.mu);
    CHECK(w.shared.held() == kWindowBlocks - kFrontierBlocks);
    CHECK(w.x->blocks.count(40 * kBlock) == 1);
    CHECK(w.x->blocks.count(31 * kBlock) == 0);
    CHECK(w.x->blocks.count(30 * kBlock) == 1);
  }
  // The rest, in file order: the hashed prefix runs through blocks in memory and blocks read
  // back (several in a row, each read while the one before is hashed).
  for (uint64_t blk = 0; blk < 48; ++blk)
    if (blk < 8 || (blk >= 32 && blk != 40))
      REQUIRE(w.shared.Stage(w.x, blk * kBlock, bytes.data() + blk * kBlock, kBlock).ok());
  REQUIRE(w.Eventually([&] { return w.x->hashed.load() == 48 * kBlock && !w.x->hash_busy.load(); }));
  CHECK(w.x->hash_error.ok());
  Hasher expect(HashKind::kSha256, bytes.size());
  expect.Update(bytes);
  CHECK(w.x->hasher->FinishHex() == expect.FinishHex());
  REQUIRE(w.Eventually([&] {
    std::lock_guard<std::mutex> lock(w.shared.mu);
    return w.x->received.Contains({0, 48 * kBlock});
  }));
  std::string back;
  REQUIRE(w.x->file->Read(0, bytes.size(), &back).ok());
  CHECK(back == bytes);
}

TEST_CASE("read-ahead: the span begun is the span read; any other is read at once; errors "
          "reach the reader") {
  Window w(4 * kBlock + 100);
  std::string bytes(4 * kBlock + 100, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 % 253);
  REQUIRE(w.x->file->Write(0, bytes).ok());
  storage::PartialFile* f = w.x->file.get();
  ReadAhead ra(kBlock);
  auto same = [&](Result<const char*> got, uint64_t off, size_t n) {
    return got.ok() && std::string_view(*got, n) == std::string_view(bytes).substr(off, n);
  };
  CHECK(same(ra.Read(f, 0, kBlock), 0, kBlock));  // nothing begun: read now
  auto first = ra.Read(f, kBlock, kBlock);
  REQUIRE(same(first, kBlock, kBlock));
  ra.Begin(f, 2 * kBlock, kBlock);
  ra.Settle();  // the begun read is done, into the other buffer: the first is as it was
  CHECK(std::string_view(*first, kBlock) == std::string_view(bytes).substr(kBlock, kBlock));
  ra.Begin(f, 2 * kBlock, kBlock);
  CHECK(same(ra.Read(f, 2 * kBlock, kBlock), 2 * kBlock, kBlock));
  ra.Begin(f, 3 * kBlock, kBlock);
  CHECK(same(ra.Read(f, 4 * kBlock, 100), 4 * kBlock, 100));  // not the one begun
  CHECK(same(ra.Read(f, 3 * kBlock, kBlock), 3 * kBlock, kBlock));  // read now
  ra.Begin(f, 4 * kBlock, 101);  // one byte past the end of the file
  CHECK(ra.Read(f, 4 * kBlock, 101).status().code() == StatusCode::kCorruption);
  CHECK(ra.Read(f, 0, kBlock + 1).status().code() == StatusCode::kInvalidArgument);
  ra.Begin(f, 0, kBlock);  // left in flight: the destructor waits for it
}
