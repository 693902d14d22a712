// EventLog, record framing and CRC32C on real LMDB.
#include <doctest/doctest.h>
#include <google/protobuf/util/message_differencer.h>
#include <lmdb.h>

#include <random>

#include "base/crc32c.h"
#include "storage/event_log.h"
#include "storage/record_format.h"
#include "log_test_util.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using modelsync::testing::OneOfEachKind;
using modelsync::testing::Ranges;
using modelsync::testing::OpenRw;
using modelsync::testing::TempDir;
using modelsync::v1::Event;

namespace {

std::vector<std::pair<uint64_t, Event>> ReadAll(EventLog& log, Status* status = nullptr) {
  std::vector<std::pair<uint64_t, Event>> out;
  Status s = log.Read(0, SIZE_MAX, &out);
  if (status)
    *status = s;
  else
    REQUIRE_MESSAGE(s.ok(), s.ToString());
  return out;
}

}  // namespace

TEST_CASE("crc32c matches the published check value") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  std::string a(1000, 'x');
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>(i * 7);
  CHECK(Crc32cExtend(Crc32c(a.substr(0, 333)), a.data() + 333, a.size() - 333) == Crc32c(a));
}

TEST_CASE("record framing: raw when small, zstd when it pays, and every check bites") {
  RecordCodec codec;
  std::string rec;
  std::string_view out;
  codec.Encode(SeqKey(1), "small payload", &rec);
  CHECK(rec[4] == kCodecRaw);
  REQUIRE(codec.Decode(SeqKey(1), rec, 1 << 20, &out).ok());
  CHECK(out == "small payload");
  // Stored under another key: the checksum covers the key.
  CHECK(codec.Decode(SeqKey(2), rec, 1 << 20, &out).IsCorruption());

  std::string big(4000, 'a');
  codec.Encode(SeqKey(3), big, &rec);
  CHECK(rec[4] == kCodecZstd);
  CHECK(rec.size() < 200);
  REQUIRE(codec.Decode(SeqKey(3), rec, 1 << 20, &out).ok());
  CHECK(out == big);
  Status s = codec.Decode(SeqKey(3), rec, 1000, &out);  // declared 4000 > cap
  CHECK(s.IsCorruption());
  CHECK(s.message().find("over the cap") != std::string::npos);

  std::mt19937 rng(1);
  std::string noise(1000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  codec.Encode(SeqKey(4), noise, &rec);
  CHECK(rec[4] == kCodecRaw);  // incompressible: stored raw

  // Every single-bit flip and every truncation of a compressed record is caught.
  codec.Encode(SeqKey(5), big, &rec);
  for (size_t bit = 0; bit < rec.size() * 8; ++bit) {
    std::string bad = rec;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    CHECK_FALSE(codec.Decode(SeqKey(5), bad, 1 << 20, &out).ok());
  }
  for (size_t n = 0; n < rec.size(); ++n)
    CHECK(
        codec.Decode(SeqKey(5), std::string_view(rec).substr(0, n), 1 << 20, &out).IsCorruption());
}

TEST_CASE("every event kind round-trips through the log, across reopen") {
  TempDir dir;
  auto events = OneOfEachKind();
  {
    auto log = OpenRw(dir.path());
    CHECK(log->LastSeq() == 0);
    auto seqs = log->Append(events);
    REQUIRE(seqs.ok());
    CHECK(seqs->front() == 1);
    CHECK(seqs->back() == events.size());
    CHECK(log->LastSeq() == events.size());
  }
  auto log = OpenRw(dir.path());
  CHECK(log->LastSeq() == events.size());
  auto got = ReadAll(*log);
  REQUIRE(got.size() == events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    CHECK(got[i].first == i + 1);
    CHECK(google::protobuf::util::MessageDifferencer::Equals(got[i].second, events[i]));
  }
  // Read honours from and limit.
  std::vector<std::pair<uint64_t, Event>> part;
  REQUIRE(log->Read(3, 2, &part).ok());
  REQUIRE(part.size() == 2);
  CHECK(part[0].first == 3);
  CHECK(part[1].first == 4);
  part.clear();
  REQUIRE(log->Read(events.size() + 5, 10, &part).ok());
  CHECK(part.empty());
}

TEST_CASE("100,000 events appended in batches and replayed in order") {
  TempDir dir;
  auto log = OpenRw(dir.path());
  const uint64_t kN = 100'000, kBatch = 1000;
  std::vector<Event> batch;
  for (uint64_t b = 0; b < kN / kBatch; ++b) {
    batch.clear();
    for (uint64_t i = 0; i < kBatch; ++i) {
      uint64_t n = b * kBatch + i;
      batch.push_back(Ranges(n % 17, n * 4096, n * 4096 + 4096, 1'764'000'000'000 + n));
    }
    auto seqs = log->Append(batch);
    REQUIRE(seqs.ok());
    CHECK(seqs->front() == b * kBatch + 1);
  }
  uint64_t seen = 0;
  Status s = log->Replay(0, [&](uint64_t seq, const Event& e) {
    if (seq != seen + 1 || e.ranges_committed().ranges(0).begin() != seen * 4096)
      return Status::Corruption("out of order at " + std::to_string(seq));
    ++seen;
    return Status::Ok();
  });
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(seen == kN);
  // A fold error stops the replay and comes back unchanged.
  s = log->Replay(50, [&](uint64_t seq, const Event&) {
    return seq == 60 ? Status::Cancelled("stop") : Status::Ok();
  });
  CHECK(s.IsCancelled());
}

TEST_CASE("the map grows when full without losing the batch in hand") {
  TempDir dir;
  EventLog::Options o;
  o.initial_map_bytes = 64 << 10;
  auto log = OpenRw(dir.path(), o);
  size_t start = log->map_bytes();
  std::mt19937 rng(5);
  std::vector<Event> batch;
  for (int i = 0; i < 3000; ++i) {
    Event e;
    e.set_time_ms(i + 1);
    std::string reason(200, '\0');
    for (char& c : reason) c = static_cast<char>('a' + rng() % 26);
    e.mutable_sync_failed()->set_reason(reason);
    e.mutable_sync_failed()->set_repo("org/r" + std::to_string(i));
    batch.push_back(e);
  }
  auto seqs = log->Append(batch);  // ~700 KB into a 64 KiB map: several doublings, one txn
  REQUIRE_MESSAGE(seqs.ok(), seqs.status().ToString());
  CHECK(seqs->size() == 3000);
  CHECK(log->map_bytes() > start);
  log.reset();
  log = OpenRw(dir.path(), o);
  auto got = ReadAll(*log);
  REQUIRE(got.size() == 3000);
  CHECK(got[2999].second.sync_failed().repo() == "org/r2999");
}

TEST_CASE("snapshots are stored framed and come back") {
  TempDir dir;
  auto log = OpenRw(dir.path());
  auto none = log->GetSnapshot("state");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  std::string bytes(100000, 'z');
  REQUIRE(log->PutSnapshot("state", 42, bytes).ok());
  REQUIRE(log->PutSnapshot("state", 43, "newer").ok());
  auto got = log->GetSnapshot("state");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->seq == 43);
  CHECK((*got)->bytes == "newer");
}

TEST_CASE("read-only opens: no log is kNotFound; writes are refused; one handle per process") {
  TempDir dir;
  auto ro = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
  CHECK(ro.status().IsNotFound());
  CHECK(ro.status().message().find("nothing has been recorded") != std::string::npos);
  { OpenRw(dir.path())->Append(OneOfEachKind()).value(); }
  auto r = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
  REQUIRE(r.ok());
  CHECK((*r)->LastSeq() == OneOfEachKind().size());
  CHECK((*r)->Append(OneOfEachKind()).status().code() == StatusCode::kInvalidArgument);
  auto again = EventLog::Open(dir.path(), EventLog::Mode::kReadWrite);
  CHECK(again.status().IsLocked());
}
