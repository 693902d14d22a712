// libFuzzer target: one page of the hub's tree listing (net/hub_json.h ParseTreePage), as
// GET /api/models/{repo}/tree/{commit}?recursive=true returns it.
// Input: the body. A second page is parsed into the same vector when the first is accepted
// and the input holds a NUL byte (the body is split there), as Hub::ListFiles does per page.
// Invariants of an accepted page: every file has a safe relative path (ValidateRepoPath), a
// 40 lower-case hex git oid, an empty or 64 lower-case hex LFS sha256; the list grows by
// at most the page's entries and never past kMaxTreeEntries; printing the accepted entries
// back as a listing and parsing that gives the same entries.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "base/path_rules.h"
#include "net/hub.h"
#include "net/hub_json.h"

namespace {

namespace net = modelsync::net;
using modelsync::v1::FileEntry;

bool IsLowerHex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void CheckEntries(const std::vector<FileEntry>& files) {
  FUZZ_CHECK(files.size() <= net::kMaxTreeEntries);
  for (const FileEntry& f : files) {
    FUZZ_CHECK(modelsync::ValidateRepoPath(f.path()).ok());
    FUZZ_CHECK(IsLowerHex(f.git_oid(), 40));
    FUZZ_CHECK(f.lfs_sha256().empty() || IsLowerHex(f.lfs_sha256(), 64));
  }
}

std::string Print(const std::vector<FileEntry>& files) {
  nlohmann::json a = nlohmann::json::array();
  for (const FileEntry& f : files) {
    nlohmann::json e = {{"type", "file"}, {"path", f.path()}, {"oid", f.git_oid()}};
    if (f.lfs_sha256().empty()) {
      e["size"] = f.size();
    } else {
      e["size"] = 1;  // the listing's own size is the pointer's; lfs.size is the file's
      e["lfs"] = {{"oid", f.lfs_sha256()}, {"size", f.size()}, {"pointerSize", 134}};
    }
    a.push_back(std::move(e));
  }
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  net::ErrorContext ctx{"org/model", "0123456789abcdef0123456789abcdef01234567", "", false};
  size_t nul = input.find('\0');
  std::string first = input.substr(0, nul);
  std::vector<FileEntry> files;
  modelsync::Status s = net::ParseTreePage(first, ctx, &files);
  if (!s.ok()) {
    FUZZ_CHECK(!s.message().empty());
    return 0;
  }
  CheckEntries(files);
  if (nul != std::string::npos) {
    const size_t before = files.size();
    s = net::ParseTreePage(input.substr(nul + 1), ctx, &files);
    FUZZ_CHECK(files.size() >= before);
    if (!s.ok()) return 0;
    CheckEntries(files);
  }
  std::vector<FileEntry> again;
  s = net::ParseTreePage(Print(files), ctx, &again);
  FUZZ_CHECK(s.ok());
  FUZZ_CHECK(again.size() == files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    FUZZ_CHECK(again[i].SerializeAsString() == files[i].SerializeAsString());
  }
  return 0;
}
