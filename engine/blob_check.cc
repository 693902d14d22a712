#include "engine/blob_check.h"

#include "engine/event_builders.h"
#include "engine/file_hash.h"
#include "storage/blob_store.h"

namespace modelsync::engine {

Result<BlobCheck> CheckUnrecordedBlobs(const Plan& plan, storage::BlobStore& blobs) {
  BlobCheck out;
  for (const auto& fp : plan.files) {
    if (fp.action != FileAction::kLink || !fp.verify_blob) continue;
    auto digest = [&]() -> Result<std::string> {
      MS_ASSIGN_OR_RETURN(auto f, blobs.dir().OpenFile(fp.content_id, storage::OpenMode::kRead));
      MS_ASSIGN_OR_RETURN(FileHashResult h, HashFile(*f, KindOfContentId(fp.content_id)));
      return h.hex;
    }();
    if (!digest.ok())
      return digest.status().With("re-reading the unrecorded blob " +
                                  fp.content_id.substr(0, 12) + " failed (it was kept)");
    if (*digest != fp.content_id) {
      MS_RETURN_IF_ERROR(blobs.Remove(fp.content_id));
      out.removed = true;
      return out;
    }
    out.verified.push_back(BlobVerifiedEvent(fp.content_id, fp.size));
  }
  return out;
}

}  // namespace modelsync::engine
