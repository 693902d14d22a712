// MemoryHub: a hub and its CDN served from memory through net::Transport, with no socket —
// what an app that plugs its own transport (engine::Env::transport) looks like to modelsync.
// It serves a fixture directory (tools/EMULATOR.md "On-disk format") the way the emulator
// does: revision and tree API, resolve URLs (LFS files 302 to the CDN with X-Linked-* and a
// signed, expiring URL; regular files answered by the hub with their git oid as ETag),
// ranges answered 206. Bodies come in 64 KiB pieces posted to the Hub's loop, honouring
// kPause / Unpause, so it also keeps the transport contract of net/transport.h.
//
// Faults, for showing that every check above the transport still holds: drop one exchange
// of a path after N body bytes (kDropped), or flip one byte of a path's bytes on every answer.
//
// Thread safety: the setters and accessors may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/env.h"
#include "net/transport.h"

namespace modelsync::testing {

class MemoryHub {
 public:
  static constexpr char kHubUrl[] = "https://hub.test";
  static constexpr char kCdnHost[] = "cdn.test";

  explicit MemoryHub(std::string fixture_dir);

  // The factory to put in engine::Env::transport (or net::HubOptions::transport).
  std::shared_ptr<net::TransportFactory> factory();
  // The real Env of a test, pulling from this hub: its endpoint, through factory().
  engine::Env env();

  // The next exchange whose URL ends in `path_suffix` breaks after `after_bytes` body bytes.
  void DropOnce(const std::string& path_suffix, uint64_t after_bytes);
  // Every answer for an object whose URL ends in `path_suffix` has the byte at file offset
  // `offset` flipped (a CDN serving bad bytes under the right headers).
  void Corrupt(const std::string& path_suffix, uint64_t offset);

  struct Seen {
    std::string url, range, authorization;
    uint64_t range_bytes = 0;
    bool own_connection = false, pipewait = false;
  };
  std::vector<Seen> seen() const;
  void ClearSeen();
  // Times a handler answered kPause (the rate limit).
  uint64_t pauses() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace modelsync::testing
