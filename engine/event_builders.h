// The events the engine records, built in one place each (proto/events.proto says what each
// means). Internal to engine. Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "proto/events.pb.h"

namespace modelsync::engine {

// Content whose bytes hashed to content_id is in blobs/ (transfer 0: not from a transfer).
v1::Event BlobVerifiedEvent(const std::string& content_id, uint64_t size, uint64_t transfer_id = 0);
// Committed before a verified blob is deleted (the fold forgets it).
v1::Event BlobRemovedEvent(const std::string& content_id, const std::string& reason);
v1::Event FileMaterializedEvent(const std::string& repo, const std::string& commit,
                                const std::string& path, const std::string& content_id);
v1::Event FileRemovedEvent(const std::string& repo, const std::string& commit,
                           const std::string& path);
v1::Event MarkerWrittenEvent(const std::string& repo, const std::string& model_id);
v1::Event MarkerRemovedEvent(const std::string& repo, const std::string& model_id);
v1::Event ModelIdAssignedEvent(const std::string& repo, const std::string& model_id,
                               const std::string& previous);
// A pull of repo ended with s (its message and code are recorded).
v1::Event SyncFailedEvent(const std::string& repo, const Status& s);

}  // namespace modelsync::engine
