#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace modelsync::engine {
namespace {

using nlohmann::json;

Status Bad(std::string_view what, const std::string& problem) {
  return Status::Permanent(std::string(what) + ": invalid safetensors header: " + problem);
}

uint64_t LoadLe64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

Status CheckPrefix(uint64_t n, uint64_t file_size, std::string_view what) {
  if (file_size < 8)
    return Bad(what, "the file is " + std::to_string(file_size) +
                         " bytes, shorter than the 8-byte header length");
  if (n > kMaxSafetensorsHeader)
    return Bad(what, "the header length " + std::to_string(n) + " exceeds the " +
                         std::to_string(kMaxSafetensorsHeader) + "-byte cap");
  if (n > file_size - 8)
    return Bad(what, "the header length " + std::to_string(n) + " runs past the end of the " +
                         std::to_string(file_size) + "-byte file (truncated download?)");
  return Status::Ok();
}

Result<TensorInfo> ParseTensor(const std::string& name, const json& t, std::string_view what) {
  std::string where = "tensor '" + name + "'";
  if (!t.is_object()) return Bad(what, where + " is not an object");
  TensorInfo ti;
  ti.name = name;
  auto dt = t.find("dtype");
  if (dt == t.end() || !dt->is_string()) return Bad(what, where + " has no dtype string");
  ti.dtype = dt->get<std::string>();
  int bits = SafetensorsDtypeBits(ti.dtype);
  if (bits == 0) return Bad(what, where + " has unknown dtype '" + ti.dtype + "'");
  auto sh = t.find("shape");
  if (sh == t.end() || !sh->is_array()) return Bad(what, where + " has no shape list");
  uint64_t elements = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())
      return Bad(what, where + " has a shape entry that is not a non-negative integer: " +
                           d.dump());
    uint64_t v = d.get<uint64_t>();
    ti.shape.push_back(v);
    if (__builtin_mul_overflow(elements, v, &elements))
      return Bad(what, where + " has a shape whose element count overflows");
  }
  auto off = t.find("data_offsets");
  if (off == t.end() || !off->is_array() || off->size() != 2 ||
      !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
    return Bad(what, where + " has no data_offsets [begin, end] of non-negative integers");
  ti.begin = (*off)[0].get<uint64_t>();
  ti.end = (*off)[1].get<uint64_t>();
  if (ti.end < ti.begin)
    return Bad(what, where + " has data_offsets ending before they begin: [" +
                         std::to_string(ti.begin) + ", " + std::to_string(ti.end) + "]");
  uint64_t total_bits;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(bits), &total_bits))
    return Bad(what, where + " has a shape whose byte size overflows");
  if (total_bits % 8 != 0)
    return Bad(what, where + " (" + ti.dtype + ") holds " + std::to_string(elements) +
                         " elements, not a whole number of bytes (misaligned sub-byte dtype)");
  uint64_t want = total_bits / 8;
  if (ti.end - ti.begin != want)
    return Bad(what, where + " (" + ti.dtype + ", " + std::to_string(elements) +
                         " elements) needs " + std::to_string(want) + " bytes but its data_offsets [" +
                         std::to_string(ti.begin) + ", " + std::to_string(ti.end) + "] span " +
                         std::to_string(ti.end - ti.begin));
  return ti;
}

}  // namespace

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

int SafetensorsDtypeBits(std::string_view d) {
  static const std::pair<std::string_view, int> kTable[] = {
      {"BOOL", 8},         {"F4", 4},       {"F6_E2M3", 6},     {"F6_E3M2", 6},
      {"U8", 8},           {"I8", 8},       {"F8_E5M2", 8},     {"F8_E4M3", 8},
      {"F8_E8M0", 8},      {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
      {"U16", 16},         {"F16", 16},     {"BF16", 16},       {"I32", 32},
      {"U32", 32},         {"F32", 32},     {"C64", 64},        {"F64", 64},
      {"I64", 64},         {"U64", 64}};
  for (const auto& [name, bits] : kTable)
    if (name == d) return bits;
  return 0;
}

Result<SafetensorsInfo> ParseSafetensorsHeader(std::string_view header, uint64_t data_bytes,
                                               std::string_view what) {
  if (header.empty() || header[0] != '{')
    return Bad(what, "the header does not start with '{' (not a safetensors file?)");
  json j = json::parse(header.begin(), header.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(what, "the header is not valid UTF-8 JSON");
  if (!j.is_object()) return Bad(what, "the header is not a JSON object");
  SafetensorsInfo info;
  info.header_bytes = header.size();
  info.data_bytes = data_bytes;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return Bad(what, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) return Bad(what, "__metadata__ value '" + mk + "' is not a string");
        info.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    MS_ASSIGN_OR_RETURN(TensorInfo ti, ParseTensor(key, value, what));
    info.tensors.push_back(std::move(ti));
  }
  std::sort(info.tensors.begin(), info.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : info.tensors) {
    if (t.begin < at)
      return Bad(what, "tensor '" + t.name + "' [" + std::to_string(t.begin) + ", " +
                           std::to_string(t.end) + ") overlaps tensor '" + prev->name + "' [" +
                           std::to_string(prev->begin) + ", " + std::to_string(prev->end) + ")");
    if (t.begin > at)
      return Bad(what, "a gap of " + std::to_string(t.begin - at) + " bytes in the data buffer at " +
                           std::to_string(at) + ", before tensor '" + t.name + "'");
    at = t.end;
    prev = &t;
  }
  if (at > data_bytes)
    return Bad(what, "tensor '" + prev->name + "' ends at " + std::to_string(at) +
                         ", past the " + std::to_string(data_bytes) +
                         "-byte data buffer (truncated file?)");
  if (at < data_bytes)
    return Bad(what, std::to_string(data_bytes - at) +
                         " bytes at the end of the data buffer belong to no tensor");
  return info;
}

Result<SafetensorsInfo> ParseSafetensorsBytes(std::string_view file, std::string_view what) {
  uint64_t size = file.size();
  uint64_t n = size >= 8 ? LoadLe64(reinterpret_cast<const unsigned char*>(file.data())) : 0;
  MS_RETURN_IF_ERROR(CheckPrefix(n, size, what));
  return ParseSafetensorsHeader(file.substr(8, n), size - 8 - n, what);
}

Result<SafetensorsInfo> ReadSafetensorsFile(const std::string& path, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  auto read_at = [&](char* buf, uint64_t len, uint64_t off) -> Status {
    uint64_t done = 0;
    while (done < len) {
      ssize_t r = ::pread(fd.get(), buf + done, len - done, static_cast<off_t>(off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(errno, "read " + path);
      if (r == 0) return Bad(what, "the file ended while reading its header (changed on disk?)");
      done += static_cast<uint64_t>(r);
    }
    return Status::Ok();
  };
  unsigned char prefix[8] = {};
  if (size >= 8) MS_RETURN_IF_ERROR(read_at(reinterpret_cast<char*>(prefix), 8, 0));
  uint64_t n = size >= 8 ? LoadLe64(prefix) : 0;
  MS_RETURN_IF_ERROR(CheckPrefix(n, size, what));
  std::string header(n, '\0');
  MS_RETURN_IF_ERROR(read_at(header.data(), n, 8));
  return ParseSafetensorsHeader(header, size - 8 - n, what);
}

}  // namespace modelsync::engine
