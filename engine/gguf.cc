#include "engine/gguf.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

using nlohmann::ordered_json;

constexpr uint64_t kMaxKey = 64u << 10;
constexpr uint64_t kMaxString = 64u << 20;
constexpr uint64_t kMaxArray = 64u << 20;
constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKeys = 1u << 20;
constexpr uint32_t kMaxGgufDims = 4;
constexpr uint64_t kMaxName = 256;
constexpr uint64_t kMaxHeader = 1ull << 30;
constexpr uint64_t kMaxElements = 1ull << 50;

// ggml's type table (ggml.h ggml_type; ggml.c type_traits): id -> {name, block, bytes}.
const std::map<uint32_t, GgmlType>& Types() {
  static const std::map<uint32_t, GgmlType> t = {
      {0, {"F32", 1, 4}},          {1, {"F16", 1, 2}},          {2, {"Q4_0", 32, 18}},
      {3, {"Q4_1", 32, 20}},       {6, {"Q5_0", 32, 22}},       {7, {"Q5_1", 32, 24}},
      {8, {"Q8_0", 32, 34}},       {9, {"Q8_1", 32, 40}},       {10, {"Q2_K", 256, 84}},
      {11, {"Q3_K", 256, 110}},    {12, {"Q4_K", 256, 144}},    {13, {"Q5_K", 256, 176}},
      {14, {"Q6_K", 256, 210}},    {15, {"Q8_K", 256, 292}},    {16, {"IQ2_XXS", 256, 66}},
      {17, {"IQ2_XS", 256, 74}},   {18, {"IQ3_XXS", 256, 98}},  {19, {"IQ1_S", 256, 50}},
      {20, {"IQ4_NL", 32, 18}},    {21, {"IQ3_S", 256, 110}},   {22, {"IQ2_S", 256, 82}},
      {23, {"IQ4_XS", 256, 136}},  {24, {"I8", 1, 1}},          {25, {"I16", 1, 2}},
      {26, {"I32", 1, 4}},         {27, {"I64", 1, 8}},         {28, {"F64", 1, 8}},
      {29, {"IQ1_M", 256, 56}},    {30, {"BF16", 1, 2}},        {34, {"TQ1_0", 256, 54}},
      {35, {"TQ2_0", 256, 66}},    {39, {"MXFP4", 32, 17}},     {40, {"NVFP4", 64, 36}},
      {41, {"Q1_0", 128, 18}},
  };
  return t;
}

std::string Bytes(uint64_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n);
}

// Sequential reads through a window over read_at; every failure names offset and field.
class Reader {
 public:
  Reader(const GgufReadAt& read_at, uint64_t size, std::string_view what)
      : read_at_(read_at), size_(size), what_(what) {}

  uint64_t pos() const { return pos_; }

  Status Fail(uint64_t at, const std::string& field, const std::string& problem) const {
    return Status::InvalidArgument(what_ + " is not a GGUF file modelsync can read: at offset " +
                                   std::to_string(at) + ", " + field + ": " + problem);
  }

  Status Read(void* out, uint64_t n, const std::string& field) {
    if (n > size_ - std::min(size_, pos_))
      return Fail(pos_, field, "the file ends after " + std::to_string(size_) +
                                   " bytes (truncated)");
    if (pos_ + n > kMaxHeader)
      return Fail(pos_, field, "the header runs past " + Bytes(kMaxHeader));
    char* dst = static_cast<char*>(out);
    while (n > 0) {
      if (pos_ < win_off_ || pos_ >= win_off_ + win_.size()) MS_RETURN_IF_ERROR(Fill(field));
      uint64_t in = win_off_ + win_.size() - pos_;
      uint64_t take = std::min(n, in);
      std::memcpy(dst, win_.data() + (pos_ - win_off_), take);
      dst += take;
      pos_ += take;
      n -= take;
    }
    return Status::Ok();
  }
  template <typename T>
  Result<T> Num(const std::string& field) {
    T v{};
    MS_RETURN_IF_ERROR(Read(&v, sizeof v, field));  // little-endian host (checked at start)
    return v;
  }
  Result<std::string> String(const std::string& field, uint64_t cap) {
    const uint64_t at = pos_;
    MS_ASSIGN_OR_RETURN(uint64_t len, Num<uint64_t>(field + " (string length)"));
    if (len > cap)
      return Fail(at, field, "string length " + std::to_string(len) + " exceeds the cap of " +
                                 Bytes(cap));
    std::string s(len, '\0');
    MS_RETURN_IF_ERROR(Read(s.data(), len, field));
    return s;
  }
  uint64_t Left() const { return size_ > pos_ ? size_ - pos_ : 0; }

 private:
  Status Fill(const std::string& field) {
    win_off_ = pos_;
    uint64_t want = std::min<uint64_t>(1u << 20, size_ - pos_);
    win_.resize(want);
    uint64_t got = 0;
    while (got < want) {
      auto n = read_at_(win_off_ + got, win_.data() + got, want - got);
      if (!n.ok()) return n.status().WithNote("reading " + what_ + " (" + field + ")");
      if (*n == 0) break;
      got += *n;
    }
    win_.resize(got);
    if (got == 0) return Fail(pos_, field, "the file ends here (truncated)");
    return Status::Ok();
  }

  const GgufReadAt& read_at_;
  uint64_t size_;
  std::string what_;
  uint64_t pos_ = 0;
  std::string win_;
  uint64_t win_off_ = 0;
};

// Smallest encoded size of a value of this type (for bounding an array before allocating).
uint64_t MinSize(uint32_t type) {
  switch (type) {
    case 0: case 1: case 7: return 1;
    case 2: case 3: return 2;
    case 4: case 5: case 6: return 4;
    case 8: return 8;   // the length
    case 9: return 12;  // type + count
    default: return 8;  // 10, 11, 12
  }
}

Result<ordered_json> Value(Reader& r, uint32_t type, const std::string& field, int depth,
                           uint32_t* elem_type = nullptr);

template <typename T>
Result<ordered_json> Scalar(Reader& r, const std::string& field) {
  MS_ASSIGN_OR_RETURN(T v, r.template Num<T>(field));
  return ordered_json(v);
}

Result<ordered_json> Value(Reader& r, uint32_t type, const std::string& field, int depth,
                           uint32_t* elem_type) {
  const uint64_t at = r.pos();
  switch (type) {
    case 0: return Scalar<uint8_t>(r, field);
    case 1: return Scalar<int8_t>(r, field);
    case 2: return Scalar<uint16_t>(r, field);
    case 3: return Scalar<int16_t>(r, field);
    case 4: return Scalar<uint32_t>(r, field);
    case 5: return Scalar<int32_t>(r, field);
    case 6: {
      MS_ASSIGN_OR_RETURN(float v, r.Num<float>(field));
      return ordered_json(static_cast<double>(v));
    }
    case 7: {
      MS_ASSIGN_OR_RETURN(uint8_t v, r.Num<uint8_t>(field));
      if (v > 1) return r.Fail(at, field, "a bool is " + std::to_string(v) + ", not 0 or 1");
      return ordered_json(v == 1);
    }
    case 8: {
      MS_ASSIGN_OR_RETURN(std::string s, r.String(field, kMaxString));
      return ordered_json(std::move(s));
    }
    case 9: {
      if (depth >= 2) return r.Fail(at, field, "arrays nested deeper than two levels");
      MS_ASSIGN_OR_RETURN(uint32_t et, r.Num<uint32_t>(field + " (array element type)"));
      if (et > 12) return r.Fail(at, field, "unknown array element type " + std::to_string(et));
      if (elem_type) *elem_type = et;
      MS_ASSIGN_OR_RETURN(uint64_t n, r.Num<uint64_t>(field + " (array length)"));
      if (n > kMaxArray)
        return r.Fail(at, field, "array of " + std::to_string(n) + " entries exceeds the cap of " +
                                     std::to_string(kMaxArray));
      if (n > r.Left() / MinSize(et))
        return r.Fail(at, field, "array of " + std::to_string(n) + " " + GgufValueTypeName(et) +
                                     " entries cannot fit in the " + std::to_string(r.Left()) +
                                     " bytes left (truncated or corrupt)");
      ordered_json a = ordered_json::array();
      a.get_ref<ordered_json::array_t&>().reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        MS_ASSIGN_OR_RETURN(ordered_json v, Value(r, et, field + "[" + std::to_string(i) + "]", depth + 1));
        a.push_back(std::move(v));
      }
      return a;
    }
    case 10: return Scalar<uint64_t>(r, field);
    case 11: return Scalar<int64_t>(r, field);
    case 12: return Scalar<double>(r, field);
    default:
      return r.Fail(at, field, "unknown value type " + std::to_string(type));
  }
}

bool Mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *out = a * b;
  return true;
}

}  // namespace

const GgmlType* FindGgmlType(uint32_t type) {
  auto it = Types().find(type);
  return it == Types().end() ? nullptr : &it->second;
}

const char* GgufValueTypeName(uint32_t type) {
  static const char* names[] = {"u8",     "i8",  "u16",   "i16", "u32", "i32", "f32",
                                "bool",   "string", "array", "u64", "i64", "f64"};
  return type <= 12 ? names[type] : "?";
}

uint64_t GgufTensor::elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

Result<GgufInfo> ParseGguf(const GgufReadAt& read_at, uint64_t file_size, std::string_view what) {
  Reader r(read_at, file_size, what);
  GgufInfo info;
  info.file_size = file_size;
  char magic[4];
  MS_RETURN_IF_ERROR(r.Read(magic, 4, "magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0)
    return r.Fail(0, "magic", "the file does not start with \"GGUF\"");
  MS_ASSIGN_OR_RETURN(info.version, r.Num<uint32_t>("version"));
  if (info.version == 0x02000000u || info.version == 0x03000000u)
    return r.Fail(4, "version", "a big-endian GGUF file; only little-endian files are read");
  if (info.version == 1)
    return r.Fail(4, "version", "GGUF version 1 (2023) is not read; convert it with a current "
                                "llama.cpp first");
  if (info.version != 2 && info.version != 3)
    return r.Fail(4, "version", "unknown GGUF version " + std::to_string(info.version));
  MS_ASSIGN_OR_RETURN(uint64_t n_tensors, r.Num<uint64_t>("tensor count"));
  MS_ASSIGN_OR_RETURN(uint64_t n_kv, r.Num<uint64_t>("metadata count"));
  if (n_tensors > kMaxTensors)
    return r.Fail(8, "tensor count", std::to_string(n_tensors) + " exceeds the cap of " +
                                         std::to_string(kMaxTensors));
  if (n_kv > kMaxKeys)
    return r.Fail(16, "metadata count", std::to_string(n_kv) + " exceeds the cap of " +
                                            std::to_string(kMaxKeys));
  info.metadata = ordered_json::object();
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = r.pos();
    const std::string f = "metadata key #" + std::to_string(i);
    MS_ASSIGN_OR_RETURN(std::string key, r.String(f, kMaxKey));
    const std::string field = f + " '" + key + "'";
    if (key.empty()) return r.Fail(at, field, "an empty key");
    if (info.metadata.contains(key)) return r.Fail(at, field, "the key appears twice");
    const uint64_t type_at = r.pos();
    MS_ASSIGN_OR_RETURN(uint32_t type, r.Num<uint32_t>(field + " (value type)"));
    if (type > 12) return r.Fail(type_at, field, "unknown value type " + std::to_string(type));
    uint32_t elem = 0;
    MS_ASSIGN_OR_RETURN(ordered_json v, Value(r, type, field, 0, &elem));
    info.metadata[key] = std::move(v);
    info.metadata_types.emplace_back(type, elem);
  }
  if (auto a = info.metadata.find("general.alignment"); a != info.metadata.end()) {
    const auto& t = info.metadata_types[static_cast<size_t>(std::distance(info.metadata.begin(), a))];
    uint64_t v = a->is_number_unsigned() ? a->get<uint64_t>() : 0;
    if (t.first != 4 || v == 0 || (v & (v - 1)) != 0 || v > (1u << 20))
      return r.Fail(r.pos(), "general.alignment", "must be a u32 power of two up to 1 MiB, is " +
                                                   a->dump());
    info.alignment = v;
  }
  if (auto a = info.metadata.find("general.architecture"); a != info.metadata.end() && a->is_string())
    info.architecture = a->get<std::string>();

  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t at = r.pos();
    const std::string f = "tensor #" + std::to_string(i);
    GgufTensor t;
    MS_ASSIGN_OR_RETURN(t.name, r.String(f + " name", kMaxName));
    const std::string field = f + " '" + t.name + "'";
    if (t.name.empty()) return r.Fail(at, field, "an empty name");
    if (!names.insert(t.name).second) return r.Fail(at, field, "the name appears twice");
    MS_ASSIGN_OR_RETURN(uint32_t nd, r.Num<uint32_t>(field + " (dimensions)"));
    if (nd == 0 || nd > kMaxGgufDims)
      return r.Fail(at, field, std::to_string(nd) + " dimensions (1 to 4 allowed)");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      MS_ASSIGN_OR_RETURN(uint64_t v, r.Num<uint64_t>(field + " (dimension " + std::to_string(d) + ")"));
      if (v == 0) return r.Fail(at, field, "dimension " + std::to_string(d) + " is 0");
      if (!Mul(elements, v, &elements) || elements > kMaxElements)
        return r.Fail(at, field, "more than 2^50 elements");
      t.dims.push_back(v);
    }
    MS_ASSIGN_OR_RETURN(t.type, r.Num<uint32_t>(field + " (type)"));
    const GgmlType* gt = FindGgmlType(t.type);
    if (!gt) return r.Fail(at, field, "unknown ggml type " + std::to_string(t.type));
    if (t.dims[0] % gt->block_values != 0)
      return r.Fail(at, field, "its first dimension " + std::to_string(t.dims[0]) +
                                   " is not a whole number of " + gt->name + " blocks of " +
                                   std::to_string(gt->block_values));
    t.bytes = elements / gt->block_values * gt->block_bytes;
    MS_ASSIGN_OR_RETURN(t.offset, r.Num<uint64_t>(field + " (offset)"));
    if (t.offset % info.alignment != 0)
      return r.Fail(at, field, "data offset " + std::to_string(t.offset) +
                                   " is not a multiple of the alignment " +
                                   std::to_string(info.alignment));
    info.tensors.push_back(std::move(t));
  }
  info.data_offset = (r.pos() + info.alignment - 1) / info.alignment * info.alignment;
  std::vector<const GgufTensor*> by_offset;
  const uint64_t data_bytes = file_size > info.data_offset ? file_size - info.data_offset : 0;
  for (auto& t : info.tensors) {
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      return r.Fail(info.data_offset + t.offset, "tensor '" + t.name + "'",
                    "its " + std::to_string(t.bytes) + " bytes of " + FindGgmlType(t.type)->name +
                        " data run past the end of the file (" + std::to_string(file_size) +
                        " bytes: truncated?)");
    t.offset += info.data_offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
      return r.Fail(by_offset[i]->offset, "tensor '" + by_offset[i]->name + "'",
                    "its data overlaps tensor '" + by_offset[i - 1]->name + "'");
  return info;
}

Result<GgufInfo> ParseGgufBytes(std::string_view file, std::string_view what) {
  GgufReadAt read_at = [file](uint64_t off, char* buf, size_t n) -> Result<size_t> {
    if (off >= file.size()) return size_t{0};
    size_t take = std::min<size_t>(n, file.size() - static_cast<size_t>(off));
    std::memcpy(buf, file.data() + off, take);
    return take;
  };
  return ParseGguf(read_at, file.size(), what);
}

Result<GgufInfo> ReadGgufFile(const Env& env, const std::string& path) {
  size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string leaf = slash == std::string::npos ? path : path.substr(slash + 1);
  MS_ASSIGN_OR_RETURN(auto d, env.fs->OpenRoot(dir, false));
  MS_ASSIGN_OR_RETURN(auto file, d->OpenFile(leaf, storage::OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(storage::FileInfo st, file->Stat());
  storage::File* f = file.get();
  GgufReadAt read_at = [f](uint64_t off, char* buf, size_t n) { return f->PRead(off, buf, n); };
  return ParseGguf(read_at, st.size, path);
}

}  // namespace modelsync::engine
