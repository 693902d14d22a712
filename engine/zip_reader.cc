#include "engine/zip_reader.h"

#include <algorithm>

namespace modelsync::engine {

uint64_t LittleEndian(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(b[at + k]);
  return v;
}

Status ZipReader::Bad(const std::string& why) const {
  return Status::InvalidArgument(what_ + " " + why);
}

Status ZipReader::Open() {
  if (size_ < 22) return Bad("is " + std::to_string(size_) + " bytes: too short for a zip archive");
  MS_ASSIGN_OR_RETURN(std::string head, read_(0, 4));
  if (head.size() < 4 || head.compare(0, 4, "PK\x03\x04", 4) != 0) {
    if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80)
      return Bad("is a pickle, not a zip: torch.save's legacy format (torch < 1.6) is not "
                 "converted; re-save it with torch >= 1.6 (torch.save's default since 2020) or "
                 "use the repo's .safetensors files");
    return Bad("is not a torch.save zip archive (no zip signature at offset 0)");
  }
  const uint64_t tail = std::min<uint64_t>(size_, 22 + 65535);
  MS_ASSIGN_OR_RETURN(std::string t, read_(size_ - tail, tail));
  size_t eocd = std::string::npos;
  for (size_t i = t.size() >= 22 ? t.size() - 22 + 1 : 0; i-- > 0;)
    if (t.compare(i, 4, "PK\x05\x06", 4) == 0) { eocd = i; break; }
  if (eocd == std::string::npos) return Bad("has no zip end-of-central-directory record");
  uint64_t count = LittleEndian(t, eocd + 10, 2), cd_size = LittleEndian(t, eocd + 12, 4), cd_off = LittleEndian(t, eocd + 16, 4);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    // ZIP64: the locator sits 20 bytes before the record.
    if (eocd < 20 || t.compare(eocd - 20, 4, "PK\x06\x07", 4) != 0)
      return Bad("says ZIP64 but has no ZIP64 locator");
    const uint64_t rec = LittleEndian(t, eocd - 20 + 8, 8);
    if (rec > size_ - 56) return Bad("has a ZIP64 record offset past its end");
    MS_ASSIGN_OR_RETURN(std::string r, read_(rec, 56));
    if (r.size() < 56 || r.compare(0, 4, "PK\x06\x06", 4) != 0)
      return Bad("has no ZIP64 end-of-central-directory record at offset " + std::to_string(rec));
    count = LittleEndian(r, 32, 8);
    cd_size = LittleEndian(r, 40, 8);
    cd_off = LittleEndian(r, 48, 8);
  }
  if (count > kMaxEntries) return Bad("has " + std::to_string(count) + " zip entries (at most 2^20)");
  if (cd_off > size_ || cd_size > size_ - cd_off || cd_size > (256u << 20))
    return Bad("has a central directory outside the file (offset " + std::to_string(cd_off) + ")");
  MS_ASSIGN_OR_RETURN(std::string cd, read_(cd_off, cd_size));
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > cd.size() || cd.compare(p, 4, "PK\x01\x02", 4) != 0)
      return Bad("central directory entry " + std::to_string(i) + " is malformed (offset " +
                 std::to_string(cd_off + p) + ")");
    ZipEntry e;
    e.method = static_cast<uint16_t>(LittleEndian(cd, p + 10, 2));
    e.csize = LittleEndian(cd, p + 20, 4);
    e.size = LittleEndian(cd, p + 24, 4);
    const size_t nlen = LittleEndian(cd, p + 28, 2), xlen = LittleEndian(cd, p + 30, 2), clen = LittleEndian(cd, p + 32, 2);
    e.local_offset = LittleEndian(cd, p + 42, 4);
    if (p + 46 + nlen + xlen + clen > cd.size()) return Bad("central directory entry " + std::to_string(i) + " runs past the directory");
    std::string name = cd.substr(p + 46, nlen);
    // ZIP64 extra field: the sizes and offset that were 0xFFFFFFFF, in this order.
    size_t x = p + 46 + nlen;
    const size_t xend = x + xlen;
    while (x + 4 <= xend) {
      const uint64_t id = LittleEndian(cd, x, 2), len = LittleEndian(cd, x + 2, 2);
      if (x + 4 + len > xend) break;
      if (id == 1) {
        size_t q = x + 4;
        auto take = [&](uint64_t* v) {
          if (*v == 0xFFFFFFFF && q + 8 <= x + 4 + len) *v = LittleEndian(cd, q, 8), q += 8;
        };
        take(&e.size);
        take(&e.csize);
        take(&e.local_offset);
      }
      x += 4 + len;
    }
    p += 46 + nlen + xlen + clen;
    if (!entries_.emplace(name, e).second) return Bad("has the zip entry '" + name + "' twice");
  }
  return Status::Ok();
}

Result<ZipEntry> ZipReader::Locate(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return Bad("has no zip entry '" + name + "'");
  ZipEntry e = it->second;
  if (e.method != 0 || e.csize != e.size)
    return Bad("zip entry '" + name + "' is compressed (method " + std::to_string(e.method) +
               "); torch.save stores its entries uncompressed");
  if (e.local_offset > size_ - 30) return Bad("zip entry '" + name + "' starts past the end");
  MS_ASSIGN_OR_RETURN(std::string h, read_(e.local_offset, 30));
  if (h.size() < 30 || h.compare(0, 4, "PK\x03\x04", 4) != 0)
    return Bad("zip entry '" + name + "' has no local header at offset " + std::to_string(e.local_offset));
  e.data_offset = e.local_offset + 30 + LittleEndian(h, 26, 2) + LittleEndian(h, 28, 2);
  if (e.data_offset > size_ || e.size > size_ - e.data_offset)
    return Bad("zip entry '" + name + "' (" + std::to_string(e.size) + " bytes at offset " +
               std::to_string(e.data_offset) + ") runs past the end of the file (truncated?)");
  return e;
}

}  // namespace modelsync::engine
