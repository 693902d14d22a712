// The events that record a resolve: RevisionResolved with the manifest, split into
// ManifestContinued events when the manifest is too big for one event (the log caps an
// event at proto::kMaxEventBytes; a listing of 20,000 files with 4 KB paths is 80 MB). The
// caller appends them in one batch (one transaction), so they are durable together.
// Thread-safe (pure).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "proto/events.pb.h"

namespace modelsync::engine {

// Each event's manifest part stays under this many bytes (well under the cap).
inline constexpr size_t kManifestEventBytes = 16u << 20;

std::vector<modelsync::v1::Event> ResolvedEvents(
    const std::string& repo, const std::string& ref, const std::string& commit,
    const std::string& endpoint, const std::vector<modelsync::v1::FileEntry>& files,
    size_t max_part_bytes = kManifestEventBytes);

}  // namespace modelsync::engine
