#include "proto/codec.h"

namespace modelsync::proto {

std::string EncodeEvent(const Event& event) {
  std::string out;
  event.SerializeToString(&out);
  return out;
}

Status DecodeEvent(std::string_view payload, Event* event) {
  if (payload.size() > kMaxEventBytes)
    return Status::Corruption("event payload of " + std::to_string(payload.size()) +
                              " bytes is over the " + std::to_string(kMaxEventBytes) + " byte cap");
  if (!event->ParseFromArray(payload.data(), static_cast<int>(payload.size())))
    return Status::Corruption("event payload does not parse");
  if (event->kind_case() == Event::KIND_NOT_SET)
    return Status::Version(
        "event of a kind this binary does not know (written by a newer modelsync? upgrade it)");
  return Status::Ok();
}

std::string_view EventKindName(const Event& event) {
  switch (event.kind_case()) {
    case Event::kRepoTracked: return "RepoTracked";
    case Event::kRepoUntracked: return "RepoUntracked";
    case Event::kRevisionResolved: return "RevisionResolved";
    case Event::kTransferStarted: return "TransferStarted";
    case Event::kRangesCommitted: return "RangesCommitted";
    case Event::kBlobVerified: return "BlobVerified";
    case Event::kTransferFailed: return "TransferFailed";
    case Event::kFileMaterialized: return "FileMaterialized";
    case Event::kFileRemoved: return "FileRemoved";
    case Event::kRevisionActivated: return "RevisionActivated";
    case Event::kMarkerWritten: return "MarkerWritten";
    case Event::kMarkerRemoved: return "MarkerRemoved";
    case Event::kSyncFailed: return "SyncFailed";
    case Event::kModelIdAssigned: return "ModelIdAssigned";
    case Event::kRepoRemoved: return "RepoRemoved";
    case Event::kSyncCompleted: return "SyncCompleted";
    case Event::kFileKept: return "FileKept";
    case Event::kManifestContinued: return "ManifestContinued";
    case Event::kBlobRemoved: return "BlobRemoved";
    case Event::KIND_NOT_SET: break;
  }
  return "Unknown";
}

}  // namespace modelsync::proto
