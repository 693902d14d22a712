// The event log under damage: flipped bits, truncation, oversized lengths, gaps, newer formats.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "base/crc32c.h"
#include "storage/event_log.h"
#include "storage/record_format.h"
#include "log_test_util.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using modelsync::testing::RawEdit;
using modelsync::testing::TempDir;
using modelsync::v1::Event;

namespace {

std::string GetRaw(MDB_txn* txn, MDB_dbi dbi, uint64_t seq) {
  std::string k = SeqKey(seq);
  MDB_val kv{8, k.data()}, v;
  REQUIRE(mdb_get(txn, dbi, &kv, &v) == 0);
  return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
}

void PutRaw(MDB_txn* txn, MDB_dbi dbi, std::string key, std::string value) {
  MDB_val kv{key.size(), key.data()}, v{value.size(), value.data()};
  REQUIRE(mdb_put(txn, dbi, &kv, &v, 0) == 0);
}

// A record with a valid checksum around body (codec byte onwards).
std::string Framed(uint64_t seq, const std::string& body) {
  std::string key = SeqKey(seq);
  uint32_t crc = Crc32cExtend(Crc32c(key), body.data(), body.size());
  std::string rec(4, '\0');
  for (int i = 0; i < 4; ++i) rec[i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  return rec + body;
}

// A log of n events (SyncFailed, reason "event-<i>-marker") in a fresh root.
void MakeLog(const std::string& root, int n) {
  auto log = EventLog::Open(root, EventLog::Mode::kReadWrite);
  REQUIRE(log.ok());
  std::vector<Event> batch;
  for (int i = 1; i <= n; ++i) {
    Event e;
    e.set_time_ms(i);
    e.mutable_sync_failed()->set_repo("org/name");
    e.mutable_sync_failed()->set_reason("event-" + std::to_string(i) + "-marker");
    batch.push_back(e);
  }
  REQUIRE((*log)->Append(batch).ok());
}

// Replays root's log; returns the status and how many events reached the fold.
Status ReplayCount(const std::string& root, uint64_t* folded) {
  *folded = 0;
  auto log = EventLog::Open(root, EventLog::Mode::kReadOnly);
  if (!log.ok()) return log.status();
  return (*log)->Replay(0, [&](uint64_t, const Event&) {
    ++*folded;
    return Status::Ok();
  });
}

void ExpectCorruptAt(const std::string& root, uint64_t seq, const std::string& what) {
  uint64_t folded = 0;
  Status s = ReplayCount(root, &folded);
  CHECK(s.IsCorruption());
  std::string want = "event #" + std::to_string(seq) + " is corrupt: " + what;
  CHECK_MESSAGE(s.message().find(want) != std::string::npos, s.message(), " wanted ", want);
  CHECK(folded == seq - 1);  // never skipped: nothing after the damage reached the fold
}

}  // namespace

TEST_CASE("damaged records are reported with their number, never skipped") {
  TempDir dir;
  const std::string base = dir.Sub("base");
  MakeLog(base, 20);
  auto copy = [&](const std::string& name) {
    std::string to = dir.Sub(name);
    REQUIRE(std::system(("cp -r '" + base + "' '" + to + "'").c_str()) == 0);
    return to;
  };
  SUBCASE("a flipped bit") {
    std::string r = copy("flip");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      std::string v = GetRaw(t, ev, 5);
      v[v.size() - 3] ^= 0x10;
      PutRaw(t, ev, SeqKey(5), v);
    });
    ExpectCorruptAt(r, 5, "checksum mismatch");
  }
  SUBCASE("a truncated record") {
    std::string r = copy("trunc");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      PutRaw(t, ev, SeqKey(7), GetRaw(t, ev, 7).substr(0, 12));
      PutRaw(t, ev, SeqKey(8), "ab");
    });
    ExpectCorruptAt(r, 7, "checksum mismatch");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) { PutRaw(t, ev, SeqKey(7), "abc"); });
    ExpectCorruptAt(r, 7, "truncated record");
  }
  SUBCASE("an oversized length field with a valid checksum") {
    std::string r = copy("oversize");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      std::string body = "\x01\xff\xff\xff\xff" + std::string(40, 'x');  // zstd, 4 GiB - 1
      PutRaw(t, ev, SeqKey(9), Framed(9, body));
    });
    ExpectCorruptAt(r, 9, "declared length of 4294967295 bytes is over the cap");
  }
  SUBCASE("a payload that is not an event, and an unknown codec") {
    std::string r = copy("garbage");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      PutRaw(t, ev, SeqKey(4), Framed(4, "\x07payload"));
    });
    ExpectCorruptAt(r, 4, "unknown codec 7");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      PutRaw(t, ev, SeqKey(3), Framed(3, std::string("\x00\xff\xff\xff", 4)));
    });
    ExpectCorruptAt(r, 3, "event payload does not parse");
  }
  SUBCASE("a missing sequence number") {
    std::string r = copy("gap");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      std::string k = SeqKey(11);
      MDB_val kv{8, k.data()};
      REQUIRE(mdb_del(t, ev, &kv, nullptr) == 0);
    });
    ExpectCorruptAt(r, 11, "it is missing (the next record is #12)");
    // Reading from the gap itself reports it too.
    auto log = EventLog::Open(r, EventLog::Mode::kReadOnly);
    std::vector<std::pair<uint64_t, Event>> out;
    Status s = (*log)->Read(11, 5, &out);
    CHECK(s.message().find("event #11 is corrupt") != std::string::npos);
  }
  SUBCASE("a duplicated record (the value of #2 copied under #3)") {
    std::string r = copy("dup");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) { PutRaw(t, ev, SeqKey(3), GetRaw(t, ev, 2)); });
    ExpectCorruptAt(r, 3, "checksum mismatch");
  }
  SUBCASE("a malformed key") {
    std::string r = copy("key");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      PutRaw(t, ev, SeqKey(4) + "\x01", "x");  // 9 bytes: sorts between #4 and #5
    });
    ExpectCorruptAt(r, 5, "its key is 9 bytes long");
  }
  SUBCASE("an event of a kind this binary does not know is kVersion, not skipped") {
    std::string r = copy("newkind");
    RawEdit(r, [](MDB_txn* t, MDB_dbi ev, MDB_dbi) {
      // Event{time_ms=1, field 99 = empty message}: a oneof tag from the future.
      PutRaw(t, ev, SeqKey(6), Framed(6, std::string("\x00\x08\x01\x9a\x06\x00", 6)));
    });
    uint64_t folded = 0;
    Status s = ReplayCount(r, &folded);
    CHECK(s.code() == StatusCode::kVersion);
    CHECK(s.message().find("event #6") != std::string::npos);
    CHECK(folded == 5);
  }
  SUBCASE("a flipped bit in the raw data file") {
    std::string r = copy("rawflip");
    std::string path = LogDir(r) + "/data.mdb";
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    size_t at = data.find("event-13-marker");
    REQUIRE(at != std::string::npos);
    REQUIRE(data.find("event-13-marker", at + 1) == std::string::npos);
    int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    char c = static_cast<char>(data[at + 6] ^ 0x01);
    REQUIRE(::pwrite(fd, &c, 1, static_cast<off_t>(at + 6)) == 1);
    ::close(fd);
    ExpectCorruptAt(r, 13, "checksum mismatch");
  }
  // The undamaged original still replays whole.
  uint64_t folded = 0;
  CHECK(ReplayCount(base, &folded).ok());
  CHECK(folded == 20);
}

TEST_CASE("a log of a newer format version (3) is refused with a clear message") {
  TempDir dir;
  MakeLog(dir.path(), 3);
  RawEdit(dir.path(), [](MDB_txn* t, MDB_dbi, MDB_dbi meta) {
    PutRaw(t, meta, "format_version", std::string("\x00\x00\x00\x03", 4));
  });
  for (auto mode : {EventLog::Mode::kReadWrite, EventLog::Mode::kReadOnly}) {
    auto log = EventLog::Open(dir.path(), mode);
    REQUIRE_FALSE(log.ok());
    CHECK(log.status().code() == StatusCode::kVersion);
    CHECK(log.status().message().find("format version 3") != std::string::npos);
    CHECK(log.status().message().find("upgrade modelsync") != std::string::npos);
  }
}

// Issue 21 item 15: LMDB falling back to its older meta page (one damaged byte of the newer
// one's transaction id) silently dropped the last commit. The tail record beside the log
// (<log>.tail) makes it a clear kCorruption; so does data.mdb replaced by an older copy.
namespace {

void AppendOne(const std::string& root, int i) {
  auto log = EventLog::Open(root, EventLog::Mode::kReadWrite);
  REQUIRE(log.ok());
  Event e;
  e.set_time_ms(i);
  e.mutable_sync_failed()->set_repo("org/name");
  e.mutable_sync_failed()->set_reason("event-" + std::to_string(i));
  REQUIRE((*log)->Append({e}).ok());
}

uint64_t Le64(const std::string& s, size_t off) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[off + i]);
  return v;
}

}  // namespace

TEST_CASE("a log that lost its last commits is refused with a clear message, not replayed short") {
  SUBCASE("the newest LMDB meta page's transaction id damaged by one byte") {
    testing::TempDir dir;
    for (int i = 1; i <= 5; ++i) AppendOne(dir.path(), i);
    std::string data = dir.path() + "/.modelsync/log/data.mdb";
    std::string bytes = testing::Slurp(data);
    // LMDB 0.9, 64-bit: page header 16 bytes; MDB_meta: magic, version, address, mapsize,
    // 2 x MDB_db (48 bytes; the first's md_pad is the page size), last_pg, txnid.
    uint32_t psize = static_cast<unsigned char>(bytes[40]) |
                     static_cast<unsigned char>(bytes[41]) << 8 |
                     static_cast<unsigned char>(bytes[42]) << 16;
    REQUIRE(psize >= 512);
    size_t off0 = 16 + 128, off1 = psize + 16 + 128;
    uint64_t t0 = Le64(bytes, off0), t1 = Le64(bytes, off1);
    size_t newest = t0 > t1 ? off0 : off1;
    uint64_t t = std::max(t0, t1);
    REQUIRE(t >= 3);
    REQUIRE((t & 0xFF) >= 2);
    bytes[newest] = static_cast<char>((t & 0xFF) - 2);  // one byte: LMDB now picks the older meta
    testing::Spit(data, bytes);
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    REQUIRE_FALSE(log.ok());
    CHECK(log.status().IsCorruption());
    CHECK(log.status().message().find("lost its last commits") != std::string::npos);
    CHECK(EventLog::Open(dir.path(), EventLog::Mode::kReadWrite).status().IsCorruption());
  }
  SUBCASE("data.mdb replaced by an older copy; deleting the tail accepts it on purpose") {
    testing::TempDir dir;
    AppendOne(dir.path(), 1);
    std::string data = dir.path() + "/.modelsync/log/data.mdb";
    std::string old = testing::Slurp(data);
    AppendOne(dir.path(), 2);
    AppendOne(dir.path(), 3);
    testing::Spit(data, old);
    auto log = EventLog::Open(dir.path(), EventLog::Mode::kReadOnly);
    CHECK(log.status().IsCorruption());
    CHECK(log.status().message().find("ends at event #1 but event #3 was committed") !=
          std::string::npos);
    std::filesystem::remove(dir.path() + "/.modelsync/log.tail");
    CHECK(EventLog::Open(dir.path(), EventLog::Mode::kReadOnly).ok());
  }
  SUBCASE("a log deleted to start over is a new log") {
    testing::TempDir dir;
    for (int i = 1; i <= 3; ++i) AppendOne(dir.path(), i);
    std::filesystem::remove_all(dir.path() + "/.modelsync/log");
    AppendOne(dir.path(), 1);
    CHECK(EventLog::Open(dir.path(), EventLog::Mode::kReadOnly).ok());
  }
}
