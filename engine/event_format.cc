#include "engine/event_format.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "base/status.h"
#include "base/units.h"

namespace modelsync::engine {
namespace {

namespace pb = google::protobuf;
using modelsync::v1::Event;

const pb::FieldDescriptor* KindField(const Event& e) {
  const pb::OneofDescriptor* oneof = Event::descriptor()->FindOneofByName("kind");
  return e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
}

std::string Short(const std::string& hex) { return hex.size() > 12 ? hex.substr(0, 12) : hex; }

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string CodeName(int code) {
  return std::string(StatusCodeName(static_cast<StatusCode>(code)));
}

std::string Summary(const Event& e) {
  std::string s;
  auto kv = [&s](const std::string& k, const std::string& v) { s += " " + k + "=" + v; };
  switch (e.kind_case()) {
    case Event::kRepoTracked: {
      const auto& x = e.repo_tracked();
      kv("repo", x.repo());
      kv("ref", x.ref());
      if (!x.model_id().empty()) kv("id", x.model_id());
      if (x.every_ms()) kv("every_ms", std::to_string(x.every_ms()));
      for (const auto& g : x.include()) kv("include", g);
      for (const auto& g : x.exclude()) kv("exclude", g);
      break;
    }
    case Event::kRepoUntracked:
      kv("repo", e.repo_untracked().repo());
      break;
    case Event::kRevisionResolved: {
      const auto& x = e.revision_resolved();
      uint64_t bytes = 0;
      for (const auto& f : x.manifest().files()) bytes += f.size();
      kv("repo", x.repo());
      kv("ref", x.ref());
      kv("commit", Short(x.commit()));
      kv("files", std::to_string(x.manifest().files_size()));
      kv("bytes", std::to_string(bytes));
      break;
    }
    case Event::kTransferStarted: {
      const auto& x = e.transfer_started();
      kv("transfer", std::to_string(x.transfer_id()));
      kv("repo", x.repo());
      kv("path", x.path());
      kv("size", std::to_string(x.size()));
      kv("content", Short(x.content_id()));
      if (x.lfs()) s += " lfs";
      break;
    }
    case Event::kRangesCommitted: {
      const auto& x = e.ranges_committed();
      kv("transfer", std::to_string(x.transfer_id()));
      for (const auto& r : x.ranges())
        s += " [" + std::to_string(r.begin()) + ", " + std::to_string(r.end()) + ")";
      break;
    }
    case Event::kBlobVerified: {
      const auto& x = e.blob_verified();
      kv("transfer", std::to_string(x.transfer_id()));
      kv("content", Short(x.content_id()));
      kv("size", std::to_string(x.size()));
      break;
    }
    case Event::kTransferFailed: {
      const auto& x = e.transfer_failed();
      kv("transfer", std::to_string(x.transfer_id()));
      kv("code", CodeName(x.code()));
      if (x.discarded()) s += " discarded";
      kv("reason", Quote(x.reason()));
      break;
    }
    case Event::kFileMaterialized: {
      const auto& x = e.file_materialized();
      kv("repo", x.repo());
      kv("commit", Short(x.commit()));
      kv("path", x.path());
      kv("content", Short(x.content_id()));
      break;
    }
    case Event::kFileRemoved: {
      const auto& x = e.file_removed();
      kv("repo", x.repo());
      kv("commit", Short(x.commit()));
      kv("path", x.path());
      break;
    }
    case Event::kRevisionActivated: {
      const auto& x = e.revision_activated();
      kv("repo", x.repo());
      kv("commit", Short(x.commit()));
      kv("ref", x.ref());
      if (!x.model_id().empty()) kv("id", x.model_id());
      if (!x.unloadable().empty()) kv("unloadable", Quote(x.unloadable()));
      break;
    }
    case Event::kModelIdAssigned: {
      const auto& x = e.model_id_assigned();
      kv("repo", x.repo());
      kv("id", x.model_id());
      if (!x.previous().empty()) kv("previous", x.previous());
      break;
    }
    case Event::kRepoRemoved:
      kv("repo", e.repo_removed().repo());
      if (!e.repo_removed().model_id().empty()) kv("id", e.repo_removed().model_id());
      break;
    case Event::kSyncCompleted:
      kv("repo", e.sync_completed().repo());
      kv("commit", Short(e.sync_completed().commit()));
      break;
    case Event::kManifestContinued:
      kv("repo", e.manifest_continued().repo());
      kv("commit", Short(e.manifest_continued().commit()));
      kv("files", std::to_string(e.manifest_continued().files_size()));
      break;
    case Event::kBlobRemoved:
      kv("content", Short(e.blob_removed().content_id()));
      kv("reason", e.blob_removed().reason());
      break;
    case Event::kFileKept:
      kv("repo", e.file_kept().repo());
      kv("path", e.file_kept().path());
      kv("kept_as", e.file_kept().kept_as());
      break;
    case Event::kMarkerWritten:
      kv("repo", e.marker_written().repo());
      kv("id", e.marker_written().model_id());
      break;
    case Event::kMarkerRemoved:
      kv("repo", e.marker_removed().repo());
      kv("id", e.marker_removed().model_id());
      break;
    case Event::kSyncFailed: {
      const auto& x = e.sync_failed();
      kv("repo", x.repo());
      kv("code", CodeName(x.code()));
      kv("reason", Quote(x.reason()));
      break;
    }
    case Event::KIND_NOT_SET:
      break;
  }
  return s;
}

nlohmann::ordered_json Scalar(const pb::Message& m, const pb::FieldDescriptor* f, int i);

nlohmann::ordered_json MessageToJson(const pb::Message& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int k = 0; k < d->field_count(); ++k) {
    const pb::FieldDescriptor* f = d->field(k);
    if (f->real_containing_oneof() && !r->HasField(m, f)) continue;
    if (f->is_repeated()) {
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      for (int i = 0; i < r->FieldSize(m, f); ++i) a.push_back(Scalar(m, f, i));
      j[f->name()] = std::move(a);
    } else {
      j[f->name()] = Scalar(m, f, -1);
    }
  }
  return j;
}

// Field f of m (element i when repeated, i < 0 otherwise).
nlohmann::ordered_json Scalar(const pb::Message& m, const pb::FieldDescriptor* f, int i) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = i >= 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name();
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f));
  }
  return nullptr;
}

}  // namespace

std::string FormatEventText(uint64_t seq, const Event& event) {
  const pb::FieldDescriptor* f = KindField(event);
  std::string kind = f ? f->message_type()->name() : "Unknown";
  return "#" + std::to_string(seq) + " " + FormatTimeMs(event.time_ms()) + " " + kind +
         Summary(event);
}

nlohmann::ordered_json EventToJson(uint64_t seq, const Event& event) {
  const pb::FieldDescriptor* f = KindField(event);
  nlohmann::ordered_json j;
  j["seq"] = seq;
  j["time_ms"] = event.time_ms();
  j["time"] = FormatTimeMs(event.time_ms());
  j["kind"] = f ? f->message_type()->name() : "Unknown";
  j["event"] = f ? MessageToJson(event.GetReflection()->GetMessage(event, f))
                 : nlohmann::ordered_json::object();
  return j;
}

// The repo an event is about; transfer events through their TransferStarted.
std::string RepoOfEvent(const modelsync::v1::Event& e, std::map<uint64_t, std::string>* transfers) {
  switch (e.kind_case()) {
    case modelsync::v1::Event::kRepoTracked: return e.repo_tracked().repo();
    case modelsync::v1::Event::kRepoUntracked: return e.repo_untracked().repo();
    case modelsync::v1::Event::kRevisionResolved: return e.revision_resolved().repo();
    case modelsync::v1::Event::kTransferStarted:
      (*transfers)[e.transfer_started().transfer_id()] = e.transfer_started().repo();
      return e.transfer_started().repo();
    case modelsync::v1::Event::kRangesCommitted: return (*transfers)[e.ranges_committed().transfer_id()];
    case modelsync::v1::Event::kBlobVerified: return (*transfers)[e.blob_verified().transfer_id()];
    case modelsync::v1::Event::kTransferFailed: return (*transfers)[e.transfer_failed().transfer_id()];
    case modelsync::v1::Event::kFileMaterialized: return e.file_materialized().repo();
    case modelsync::v1::Event::kFileRemoved: return e.file_removed().repo();
    case modelsync::v1::Event::kRevisionActivated: return e.revision_activated().repo();
    case modelsync::v1::Event::kMarkerWritten: return e.marker_written().repo();
    case modelsync::v1::Event::kMarkerRemoved: return e.marker_removed().repo();
    case modelsync::v1::Event::kSyncFailed: return e.sync_failed().repo();
    case modelsync::v1::Event::kModelIdAssigned: return e.model_id_assigned().repo();
    case modelsync::v1::Event::kRepoRemoved: return e.repo_removed().repo();
    case modelsync::v1::Event::kSyncCompleted: return e.sync_completed().repo();
    case modelsync::v1::Event::kFileKept: return e.file_kept().repo();
    case modelsync::v1::Event::kManifestContinued: return e.manifest_continued().repo();
    default: return "";
  }
}

}  // namespace modelsync::engine
