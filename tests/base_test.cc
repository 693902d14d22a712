#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/byte_range.h"
#include "base/copy.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/status.h"
#include "base/units.h"

using namespace modelsync;

TEST_CASE("git blob sha1 matches git hash-object") {
  CHECK(GitBlobSha1Hex("Hello, World!") == "b45ef6fec89518d314f546fd6c3025367b721684");
  CHECK(GitBlobSha1Hex("") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST_CASE("sha256 incremental equals one-shot") {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  Hasher h(HashKind::kSha256, data.size());
  for (size_t i = 0; i < data.size(); i += 777)
    h.Update(data.data() + i, std::min<size_t>(777, data.size() - i));
  CHECK(h.FinishHex() == Sha256Hex(data));
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("CopyStreaming copies every length at every alignment, and nothing else") {
  // Lengths around the 16-byte head and the 64-byte steps, and one of a transfer's pieces;
  // every offset of the destination and source within a cache line.
  std::string src(300000, '\0');
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>(i * 131 % 251 + 1);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  lengths.push_back(4096 + 17);
  lengths.push_back(262144 + 5);
  for (size_t n : lengths)
    for (size_t d = 0; d < 64; d += (n > 200 ? 7 : 1))
      for (size_t s : {size_t{0}, size_t{1}, size_t{13}, size_t{63}}) {
        std::string dst(n + 128, '\0');
        CopyStreaming(dst.data() + d, src.data() + s, n);
        INFO("n=" << n << " dst+" << d << " src+" << s);
        REQUIRE(dst.compare(d, n, src, s, n) == 0);
        REQUIRE(dst.find_first_not_of('\0', 0) >= (n == 0 ? dst.size() : d));
        REQUIRE(dst.find_first_not_of('\0', d + n) == std::string::npos);
      }
}

TEST_CASE("RangeSet merges, finds gaps and agrees with a bitmap") {
  RangeSet s;
  s.Add({10, 20});
  s.Add({30, 40});
  s.Add({20, 30});
  REQUIRE(s.ranges().size() == 1);
  CHECK(s.ranges()[0] == ByteRange{10, 40});
  CHECK(s.Missing(50) == std::vector<ByteRange>{{0, 10}, {40, 50}});
  CHECK(s.PrefixEnd() == 0);
  CHECK(s.Contains({12, 38}));
  CHECK_FALSE(s.Contains({5, 12}));

  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    RangeSet r;
    std::vector<bool> bits(300, false);
    for (int i = 0; i < 20; ++i) {
      uint64_t b = rng() % 300, e = b + rng() % 40;
      if (e > 300) e = 300;
      r.Add({b, e});
      for (uint64_t k = b; k < e; ++k) bits[k] = true;
    }
    uint64_t covered = 0;
    for (bool bit : bits) covered += bit;
    CHECK(r.CoveredBytes() == covered);
    for (size_t i = 1; i < r.ranges().size(); ++i)
      CHECK(r.ranges()[i - 1].end < r.ranges()[i].begin);
    for (auto gap : r.Missing(300))
      for (uint64_t k = gap.begin; k < gap.end; ++k) CHECK_FALSE(bits[k]);
    // Minus and Uncovered against the bitmap.
    RangeSet other;
    std::vector<bool> obits(300, false);
    for (int i = 0; i < 8; ++i) {
      uint64_t b = rng() % 300, e = std::min<uint64_t>(300, b + rng() % 50);
      other.Add({b, e});
      for (uint64_t k = b; k < e; ++k) obits[k] = true;
    }
    const RangeSet diff = r.Minus(other);
    uint64_t want = 0;
    for (uint64_t k = 0; k < 300; ++k) {
      want += bits[k] && !obits[k];
      CHECK(diff.Contains({k, k + 1}) == (bits[k] && !obits[k]));
    }
    CHECK(diff.CoveredBytes() == want);
    for (size_t i = 1; i < diff.ranges().size(); ++i)
      CHECK(diff.ranges()[i - 1].end < diff.ranges()[i].begin);
    const RangeSet gaps = r.Uncovered({40, 260});
    for (uint64_t k = 0; k < 300; ++k)
      CHECK(gaps.Contains({k, k + 1}) == (k >= 40 && k < 260 && !bits[k]));
    // RunEnd and Overlaps against the bitmap.
    for (uint64_t k = 0; k < 300; ++k) {
      uint64_t e = k;
      while (e < 300 && bits[e]) ++e;
      CHECK(r.RunEnd(k) == e);
      uint64_t len = rng() % 12;
      bool any = false;
      for (uint64_t j = k; j < k + len && j < 300; ++j) any |= bits[j];
      CHECK(r.Overlaps({k, std::min<uint64_t>(300, k + len)}) == any);
    }
  }
}

TEST_CASE("units parse what people type and refuse the rest") {
  CHECK(ParseDuration("500ms")->count() == 500);
  CHECK(ParseDuration("30s")->count() == 30000);
  CHECK(ParseDuration("6h")->count() == 6 * 3600 * 1000);
  CHECK_FALSE(ParseDuration("6").ok());
  CHECK_FALSE(ParseDuration("abc").ok());
  CHECK(*ParseRate("20MB/s") == 20'000'000);
  CHECK(*ParseRate("512KiB/s") == 512 * 1024);
  CHECK_FALSE(ParseRate("0MB/s").ok());
  CHECK_FALSE(ParseRate("fast").ok());
  CHECK(FormatBytes(1536) == "1.50 KiB");
}

TEST_CASE("Status carries code, message and errno detail") {
  Status s = Status::FromErrno(ENOSPC, "write /x");
  CHECK(s.IsNoSpace());
  CHECK(s.detail() == ENOSPC);
  CHECK(s.message().find("/x") != std::string::npos);
  CHECK(Status::FromErrno(ENOENT, "open").IsNotFound());
  Result<int> r = Status::Locked("busy");
  CHECK_FALSE(r.ok());
  CHECK(r.status().IsLocked());
}

TEST_CASE("WriteFileAtomic and ReadFile round-trip") {
  char tmpl[] = "/tmp/ms_base_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string p = JoinPath(dir, "f.txt");
  REQUIRE(WriteFileAtomic(p, "hello").ok());
  CHECK(*ReadFile(p) == "hello");
  CHECK(ReadFile(JoinPath(dir, "missing")).status().IsNotFound());
  std::system(("rm -rf " + dir).c_str());
}

// Issue 14 defect 5: whether a message already says what to do was decided by searching it
// for " again" / " retry"; it is a flag now, set where the advice is written and kept by
// With/WithNote.
TEST_CASE("Status::has_advice marks messages that already say what to do") {
  Status full = Status::FromErrno(ENOSPC, "write /x");
  CHECK(full.IsNoSpace());
  CHECK(full.has_advice());
  CHECK(full.With("pull").has_advice());
  CHECK(full.WithNote("more").has_advice());
  CHECK(full.WithNote("more").message().find("(more)") != std::string::npos);
  CHECK(full.WithNote("more").detail() == ENOSPC);
  // A message that merely contains the words is not advice.
  Status eio = Status::IOError("run it again and retry", EIO);
  CHECK_FALSE(eio.has_advice());
  CHECK_FALSE(Status::FromErrno(EIO, "read /x").has_advice());
  CHECK(Status::IOError("x").Advised().has_advice());
  CHECK(Status::Ok().WithNote("n").ok());
}
