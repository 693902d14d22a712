// engine::SafetensorsWriter, the converters' shard writer: the bytes handed to Append land in
// the shards at the header's offsets, through its three threads (caller, hashing, writing) and
// its 4 MiB blocks, on a disk that takes direct I/O and on one that may not (tmpfs); the sha256
// it reports is the file's; a write error is returned, not hung on.
#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "base/hash.h"
#include "engine/safetensors.h"
#include "engine/safetensors_writer.h"
#include "storage/fault_file_system.h"
#include "support/temp_dir.h"

using namespace modelsync;
using namespace modelsync::engine;
using modelsync::testing::TempDir;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Byte k of tensor t: a pattern no two tensors (or offsets within a block) share.
unsigned char PatternByte(size_t t, uint64_t k) {
  return static_cast<unsigned char>((k * 131 + (k >> 13) * 7 + t * 29) & 0xFF);
}

std::vector<PlannedTensor> Planned() {
  // Name order a, b, c, d, e; with 6 MiB shards: {a, b, c}, {d}, {e} (a shard of no bytes:
  // e is empty but does not fit beside d).
  return {{"d", "U8", {(9u << 20) + 3}},
          {"a", "F32", {3}},
          {"b", "U8", {(5u << 20) + 7}},
          {"e", "U8", {0}},
          {"c", "F16", {1000}}};
}

// Appends every tensor in order() in chunks of random sizes (1 byte to 3 MiB).
Status AppendAll(SafetensorsWriter& w) {
  std::mt19937_64 rng(7);
  for (int i : w.order()) {
    const uint64_t n = w.tensor_bytes(i);
    for (uint64_t at = 0; at < n;) {
      const uint64_t k = std::min<uint64_t>(n - at, 1 + rng() % (3u << 20));
      std::string chunk(k, '\0');
      for (uint64_t j = 0; j < k; ++j) chunk[j] = static_cast<char>(PatternByte(i, at + j));
      MS_RETURN_IF_ERROR(w.Append(i, chunk));
      at += k;
    }
  }
  return Status::Ok();
}

void CheckWritten(const std::string& dir, const std::vector<PlannedTensor>& tensors) {
  CHECK(std::filesystem::exists(dir + "/model.safetensors.index.json"));
  auto index = nlohmann::json::parse(Slurp(dir + "/model.safetensors.index.json"));
  CHECK(index["weight_map"]["a"] == "model-00001-of-00003.safetensors");
  CHECK(index["weight_map"]["c"] == "model-00001-of-00003.safetensors");
  CHECK(index["weight_map"]["d"] == "model-00002-of-00003.safetensors");
  CHECK(index["weight_map"]["e"] == "model-00003-of-00003.safetensors");
  size_t seen = 0;
  for (int s = 1; s <= 3; ++s) {
    const std::string name = "model-0000" + std::to_string(s) + "-of-00003.safetensors";
    const std::string file = Slurp(dir + "/" + name);
    auto info = ParseSafetensorsBytes(file, name);
    REQUIRE_MESSAGE(info.ok(), info.status().ToString());
    CHECK(info->metadata.at("format") == "mlx");
    CHECK(8 + info->header_bytes + info->data_bytes == file.size());
    for (const auto& t : info->tensors) {
      size_t i = 0;
      while (tensors[i].name != t.name) ++i;
      const char* data = file.data() + 8 + info->header_bytes + t.begin;
      bool same = true;
      for (uint64_t k = 0; k < t.end - t.begin && same; ++k)
        same = static_cast<unsigned char>(data[k]) == PatternByte(i, k);
      CHECK_MESSAGE(same, t.name);
      ++seen;
    }
  }
  CHECK(seen == tensors.size());
}

void WriteAndCheck(TempDir::Where where) {
  TempDir tmp(where);
  auto dir = storage::RealFileSystem()->OpenRoot(tmp.path(), false);
  REQUIRE(dir.ok());
  const auto tensors = Planned();
  WrittenFiles written;
  {
    SafetensorsWriter w(**dir, tensors, 6u << 20);
    REQUIRE(w.Open(0, "test").ok());
    REQUIRE(AppendAll(w).ok());
    auto st = w.Finish(&written);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
  }
  CHECK(written.files.size() == 4);  // three shards and the index
  for (const auto& f : written.files) CHECK(written.sha256.at(f) == Sha256Hex(Slurp(tmp.path() + "/" + f)));
  CheckWritten(tmp.path(), tensors);
}

}  // namespace

TEST_CASE("safetensors writer: shards hold the appended bytes at their offsets, hashed as written") {
  SUBCASE("a disk (direct I/O)") { WriteAndCheck(TempDir::kDisk); }
  SUBCASE("tmpfs where there is one") { WriteAndCheck(TempDir::kFast); }
}

TEST_CASE("safetensors writer: a write that fails is the error of Append or Finish, and nothing hangs") {
  for (uint64_t nth : {1, 2, 4}) {
    CAPTURE(nth);
    TempDir tmp;
    storage::FaultFileSystem ffs(storage::RealFileSystem());
    auto dir = ffs.OpenRoot(tmp.path(), false);
    REQUIRE(dir.ok());
    ffs.FailNth(storage::FsOp::kWrite, nth, ENOSPC, /*persistent=*/true);
    const auto tensors = Planned();
    SafetensorsWriter w(**dir, tensors, 6u << 20);
    REQUIRE(w.Open(0, "test").ok());
    Status st = AppendAll(w);
    WrittenFiles written;
    if (st.ok()) st = w.Finish(&written);
    CHECK(!st.ok());
    CHECK(st.detail() == ENOSPC);
    CHECK(written.files.empty());
  }
}

TEST_CASE("safetensors writer: dropped halfway (a refused tensor, Ctrl-C) it stops its threads") {
  TempDir tmp;
  auto dir = storage::RealFileSystem()->OpenRoot(tmp.path(), false);
  REQUIRE(dir.ok());
  const auto tensors = Planned();
  auto w = std::make_unique<SafetensorsWriter>(**dir, tensors, 6u << 20);
  REQUIRE(w->Open(0, "test").ok());
  const int first = w->order()[0];
  REQUIRE(w->Append(first, std::string(w->tensor_bytes(first), 'x')).ok());
  w.reset();  // joins the hashing and writing threads: returning at all is the check
  CHECK(std::filesystem::exists(tmp.path() + "/model-00001-of-00003.safetensors"));
}
