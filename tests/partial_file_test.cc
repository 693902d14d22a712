// storage/partial_file.h: partial files (bounds, a failed fsync that poisons the file,
// direct writes and reads past the page cache) and their store (create, reopen, list,
// remove, a preallocation that does not fit).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/platform.h"
#include "storage/fault_file_system.h"
#include "storage/file_system.h"
#include "storage/partial_file.h"
#include "test_util.h"

using namespace modelsync;
using namespace modelsync::storage;
using modelsync::testing::Exists;
using modelsync::testing::Pattern;
using modelsync::testing::Spit;
using modelsync::testing::TempDir;

namespace {

// A partial store under a temporary root, on fs (the real file system unless a test's).
struct Partials {
  TempDir t;
  std::unique_ptr<Dir> root;
  std::unique_ptr<PartialStore> store;
  explicit Partials(FileSystem* fs = RealFileSystem()) {
    auto r = fs->OpenRoot(t.path(), false);
    REQUIRE(r.ok());
    root = std::move(*r);
    auto s = PartialStore::Open(*root);
    REQUIRE(s.ok());
    store = std::move(*s);
  }
};

}  // namespace

TEST_CASE("a failed fsync loses the unsynced ranges and poisons the partial file") {
  FaultFileSystem fs(RealFileSystem());
  Partials p(&fs);
  PartialStore* store = p.store.get();
  const std::string data = Pattern(4096, 3);
  auto pf = store->Create(1, data.size());
  REQUIRE(pf.ok());
  REQUIRE((*pf)->Write(0, data.substr(0, 2048)).ok());
  REQUIRE((*pf)->Sync().ok());
  REQUIRE((*pf)->Write(2048, data.substr(2048)).ok());
  fs.FailNth(FsOp::kSync, fs.Count(FsOp::kSync) + 1, EIO);
  RangeSet durable;
  Status s = (*pf)->Sync(&durable);
  CHECK(s.IsIOError());
  CHECK(s.message().find("lost") != std::string::npos);
  CHECK(durable.empty());
  CHECK((*pf)->poisoned());
  CHECK_FALSE((*pf)->Write(0, "x").ok());
  CHECK_FALSE((*pf)->Sync().ok());
  // The bytes really are gone: "fsync again and trust it" would have been wrong.
  std::string back;
  REQUIRE((*pf)->Read(0, data.size(), &back).ok());
  CHECK(back.substr(0, 2048) == data.substr(0, 2048));
  CHECK(back.substr(2048) == std::string(2048, '\0'));
}

TEST_CASE("direct writes: aligned blocks past the page cache, the file's unaligned tail, one Sync") {
  // On the linux platform file over this ext4 the partial takes O_DIRECT; on the posix one
  // (the ASan build) or a test file system WriteDirect is an ordinary write, and the same
  // bytes must land either way.
  Partials p;
  PartialStore* store = p.store.get();
  const size_t kA = platform::kDirectAlign;
  const std::string data = Pattern(3 * 256 * kA + 100, 11);  // 3 MiB and a 100-byte tail
  auto pf = store->Create(7, data.size());
  REQUIRE(pf.ok());
  PartialFile& f = **pf;
  char* buf = static_cast<char*>(std::aligned_alloc(kA, 256 * kA));
  REQUIRE(buf != nullptr);
  auto put = [&](uint64_t off, size_t n) {
    std::memcpy(buf, data.data() + off, n);
    return f.WriteDirect(off, std::string_view(buf, n));
  };
  CHECK(put(256 * kA, 256 * kA).ok());   // the second MiB
  CHECK(put(3 * 256 * kA, 100).ok());    // the tail: its length may be anything
  CHECK(put(0, 256 * kA).ok());
  if (f.direct()) {
    // Misaligned offsets and lengths are refused before any byte is written.
    CHECK(put(2 * 256 * kA + 1, kA).code() == StatusCode::kInvalidArgument);
    CHECK(put(2 * 256 * kA, kA + 1).code() == StatusCode::kInvalidArgument);
  }
  CHECK(put(2 * 256 * kA, 256 * kA).ok());
  std::free(buf);
  CHECK(f.WriteDirect(data.size() - 10, std::string_view("01234567890")).code() == StatusCode::kInvalidArgument);
  RangeSet durable;
  REQUIRE(f.Sync(&durable).ok());
  CHECK(durable.ranges() == std::vector<ByteRange>{{0, data.size()}});
  std::string back;
  REQUIRE(f.Read(0, data.size(), &back).ok());
  CHECK(back == data);
  // Through a test file system there is no direct handle, and the write is an ordinary one.
  FaultFileSystem ffs(RealFileSystem());
  Partials fp(&ffs);
  auto fpf = fp.store->Create(8, 10);
  REQUIRE(fpf.ok());
  CHECK_FALSE((*fpf)->direct());
  CHECK((*fpf)->WriteDirect(3, "abc").ok());
  CHECK(ffs.UnsyncedBytes() == 3);
}

TEST_CASE("direct reads: blocks read back past the page cache, bytes written either way") {
  // PartialFile::ReadInto, the hashing thread's read-back (engine/read_ahead.h): the same
  // bytes whichever handle wrote them, synced or not; past the page cache where the partial
  // has a direct handle (the linux platform file over this ext4), an ordinary read elsewhere.
  Partials p;
  PartialStore* store = p.store.get();
  const size_t kA = platform::kDirectAlign, kMiB = 256 * kA;
  const std::string data = Pattern(3 * kMiB + 100, 12);
  auto pf = store->Create(9, data.size());
  REQUIRE(pf.ok());
  PartialFile& f = **pf;
  char* buf = static_cast<char*>(std::aligned_alloc(kA, kMiB + kA));
  REQUIRE(buf != nullptr);
  std::memcpy(buf, data.data(), kMiB);
  REQUIRE(f.WriteDirect(0, std::string_view(buf, kMiB)).ok());  // the first MiB, directly
  REQUIRE(f.Write(kMiB, std::string_view(data).substr(kMiB)).ok());  // the rest, not synced
  auto read = [&](uint64_t off, size_t n) {
    std::memset(buf, 0, kMiB + kA);
    return f.ReadInto(off, n, buf).ok() && std::string_view(buf, n) == std::string_view(data).substr(off, n);
  };
  CHECK(read(0, kMiB));
  CHECK(read(kMiB, kMiB));              // written through the page cache, still dirty there
  CHECK(read(2 * kMiB, kMiB + 100));    // to the end of the file: an unaligned length
  CHECK(f.ReadInto(3 * kMiB, 101, buf).code() == StatusCode::kCorruption);  // past the end
  if (f.direct()) {
    // Nothing of the first MiB came into the page cache: neither its write nor its reads.
    const int fd = ::open(f.path().c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    void* map = ::mmap(nullptr, kMiB, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(map != MAP_FAILED);
    std::vector<unsigned char> in(kMiB / static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
    REQUIRE(::mincore(map, kMiB, in.data()) == 0);
    size_t resident = 0;
    for (unsigned char c : in) resident += c & 1;
    CHECK(resident == 0);
    ::munmap(map, kMiB);
    ::close(fd);
  }
  CHECK(read(5, 1000));  // an unaligned offset: an ordinary read
  std::free(buf);
}

TEST_CASE("partial store: create, reopen with size check, list, remove, bounds") {
  Partials p;
  PartialStore* store = p.store.get();
  {
    auto pf = store->Create(7, 1000);
    REQUIRE(pf.ok());
    CHECK((*pf)->Write(990, std::string(11, 'x')).code() == StatusCode::kInvalidArgument);
    REQUIRE((*pf)->Write(0, "abc").ok());
    REQUIRE((*pf)->Sync().ok());
  }
  Spit(p.t / ".modelsync/partial/not-a-transfer", "junk");
  Spit(p.t / ".modelsync/partial/007", "junk");
  auto list = store->List();
  REQUIRE(list.ok());
  CHECK(*list == std::map<uint64_t, uint64_t>{{7, 1000}});
  CHECK(store->OpenExisting(7, 999).status().IsCorruption());
  CHECK(store->OpenExisting(8, 10).status().IsNotFound());
  auto again = store->OpenExisting(7, 1000);
  REQUIRE(again.ok());
  std::string got;
  REQUIRE((*again)->Read(0, 3, &got).ok());
  CHECK(got == "abc");
  CHECK((*again)->Read(999, 2, &got).IsCorruption());
  REQUIRE(store->Remove(7).ok());
  REQUIRE(store->Remove(7).ok());
  CHECK_FALSE(Exists(p.t / ".modelsync/partial/7"));
}

TEST_CASE("partial store: a preallocation that does not fit fails naming the file") {
  FaultFileSystem fs(RealFileSystem());
  Partials p(&fs);
  PartialStore* store = p.store.get();
  fs.FailNth(FsOp::kAllocate, 1, ENOSPC);
  auto pf = store->Create(1, 1 << 20);
  REQUIRE_FALSE(pf.ok());
  CHECK(pf.status().IsNoSpace());
  CHECK(pf.status().message().find(".modelsync/partial/1") != std::string::npos);
  CHECK(pf.status().message().find("free some space") != std::string::npos);
  auto huge = store->Create(2, 1ull << 62);  // beyond any file size limit (EFBIG)
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.status().message().find(".modelsync/partial/2") != std::string::npos);
}
