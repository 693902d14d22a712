#include "net/hub_json.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/path_rules.h"
#include "base/strings.h"
#include "net/hub.h"

namespace modelsync::net {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 64;

// nlohmann's parser is not recursive, but keep hostile nesting out before parsing at all.
bool DepthOk(const std::string& s) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

Result<json> Parse(const std::string& body, const ErrorContext& ctx, const char* what) {
  if (!DepthOk(body)) {
    return Status::Permanent(std::string("the hub's ") + what + " for " + ctx.Describe() +
                             " is nested too deeply: check HF_ENDPOINT points at a hub");
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::Permanent(std::string("the hub's ") + what + " for " + ctx.Describe() +
                             " is not valid JSON: check HF_ENDPOINT points at a hub");
  }
  return j;
}

bool GetU64(const json& o, const char* key, uint64_t* out) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) return false;
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return true;
  }
  int64_t v = it->get<int64_t>();
  if (v < 0) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}

const std::string* GetString(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

}  // namespace

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

Result<std::string> ParseRevisionSha(const std::string& body, const ErrorContext& ctx) {
  MS_ASSIGN_OR_RETURN(json j, Parse(body, ctx, "revision info"));
  const std::string* sha = j.is_object() ? GetString(j, "sha") : nullptr;
  if (sha == nullptr || !IsHex(*sha, 40)) {
    return Status::Permanent("the hub's revision info for " + ctx.Describe() +
                             " has no 40-hex \"sha\": check HF_ENDPOINT points at a hub");
  }
  return AsciiLower(*sha);
}

// JSON objects in body (a '{' outside strings), counted without building anything.
size_t CountObjects(const std::string& body) {
  size_t n = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++n;
    }
  }
  return n;
}

Status ParseTreePage(const std::string& body, const ErrorContext& ctx,
                     std::vector<modelsync::v1::FileEntry>* files) {
  // Memory is bounded before the document is built: a page may hold at most
  // kMaxTreePageEntries objects (a parsed entry costs ~100 bytes even when it is `{}`).
  if (CountObjects(body) > kMaxTreePageEntries)
    return Status::Permanent("a page of the file listing of " + ctx.Describe() + " holds more than " +
                             std::to_string(kMaxTreePageEntries) +
                             " entries (the hub pages by 1,000): refusing it");
  MS_ASSIGN_OR_RETURN(json j, Parse(body, ctx, "file listing"));
  if (!j.is_array()) {
    return Status::Permanent("the hub's file listing for " + ctx.Describe() +
                             " is not a JSON array: check HF_ENDPOINT points at a hub");
  }
  if (files->size() + j.size() > kMaxTreeEntries) {
    return Status::Permanent("the file listing of " + ctx.Describe() + " has more than " +
                             std::to_string(kMaxTreeEntries) + " entries: refusing it");
  }
  size_t index = 0;
  for (const json& e : j) {
    const std::string at =
        "entry " + std::to_string(index++) + " of the file listing of " + ctx.Describe();
    auto bad = [&](const std::string& why) {
      return Status::Permanent(at + " " + why + ": the hub sent a malformed listing");
    };
    if (!e.is_object()) return bad("is not an object");
    const std::string* type = GetString(e, "type");
    const std::string* path = GetString(e, "path");
    if (type == nullptr) return bad("has no string \"type\"");
    if (path == nullptr) return bad("has no string \"path\"");
    if (*type == "directory") continue;
    if (*type != "file") return bad("has unknown type '" + type->substr(0, 40) + "'");
    if (Status unsafe = ValidateRepoPath(*path); !unsafe.ok()) {
      // base/path_rules.h, the rules the engine and storage apply too: refused here, before
      // the listing leaves net, so nothing unsafe is ever recorded.
      return Status::InvalidArgument("the file listing of " + ctx.Describe() +
                                     " contains an unsafe path: " + unsafe.message() +
                                     ": refusing this revision (it could write outside the "
                                     "model directory)");
    }
    modelsync::v1::FileEntry f;
    f.set_path(*path);
    uint64_t size = 0;
    if (!GetU64(e, "size", &size)) return bad("has no non-negative integer \"size\"");
    const std::string* oid = GetString(e, "oid");
    if (oid == nullptr || !IsHex(*oid, 40)) return bad("has no 40-hex \"oid\"");
    f.set_git_oid(AsciiLower(*oid));
    f.set_size(size);
    auto lfs = e.find("lfs");
    if (lfs != e.end() && !lfs->is_null()) {
      if (!lfs->is_object()) return bad("has a non-object \"lfs\"");
      const std::string* sha = GetString(*lfs, "oid");
      if (sha == nullptr || !IsHex(*sha, 64)) return bad("has no 64-hex \"lfs.oid\"");
      uint64_t lfs_size = 0;
      if (!GetU64(*lfs, "size", &lfs_size)) return bad("has no integer \"lfs.size\"");
      f.set_lfs_sha256(AsciiLower(*sha));
      f.set_size(lfs_size);
    }
    files->push_back(std::move(f));
  }
  return Status::Ok();
}


}  // namespace modelsync::net
