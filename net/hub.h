// Hub: the client side of the hub protocol (PROTOCOL.md): resolve a ref to a commit and its
// manifest, and fetch byte ranges of files into caller-supplied sinks.
//
// One Hub owns one thread running a Boost.Asio io_context that drives its transport
// (net/transport.h; libcurl's multi handle unless HubOptions::transport says otherwise).
// Connections are reused and, where the server offers HTTP/2, multiplexed; many fetches run
// at once (HubOptions::max_connections in total and per host).
//
// Thread safety: every public member may be called from any thread, except that Resolve()
// must not be called from inside a FetchSink callback (it would wait on its own thread).
//
// Errors (Status codes), each message naming the repo and revision and saying what to do,
// never containing the token:
//   kOffline       HubOptions::offline: nothing was sent.
//   kNotFound      repository missing or private (RepoNotFound, or 401), revision missing
//                  (RevisionNotFound), file missing (EntryNotFound).
//   kUnauthorized  gated repository, rejected token, 403.
//   kTransient     attempts exhausted on connection errors, stalls, 408, 429, 5xx, a
//                  server that ignores Range or sends a wrong Content-Range (retried like
//                  a 5xx: an edge may do it once; no byte of such an answer is delivered).
//   kPermanent     other 4xx, TLS failure, malformed JSON, too many or non-http(s) redirects.
//   kIntegrity     the hub's identity of the file (ETag / X-Linked-Etag / X-Linked-Size /
//                  Content-Range total / X-Repo-Commit) differs from what was asked for.
//   kCancelled     Cancel() or ~Hub().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/byte_range.h"
#include "base/status.h"
#include "net/hub_options.h"
#include "proto/events.pb.h"

namespace modelsync::net {

struct ResolvedRevision {
  std::string repo;    // "org/name" as asked
  std::string ref;     // as asked: branch, tag or 40-hex commit
  std::string commit;  // 40-hex, lower case
  // Every file of the commit, sorted by path. Paths are checked by IsSafeRepoPath(); a
  // listing holding an unsafe path fails Resolve with kPermanent.
  std::vector<modelsync::v1::FileEntry> files;
  // False when Resolve skipped the listing because the caller already has the manifest of
  // `commit` (see Resolve's `known`); files is then empty.
  bool listed = true;
};

// What to fetch, and the identity the hub must confirm before a byte reaches the sink.
struct FetchSpec {
  std::string repo;    // "org/name"
  std::string commit;  // 40-hex: files are always fetched at a commit, never at a branch
  std::string path;    // repo-relative, '/'-separated (percent-encoded by the client)
  uint64_t file_size = 0;
  std::string git_oid;     // expected ETag for regular files
  std::string lfs_sha256;  // expected X-Linked-Etag for LFS files (empty = regular file)
  ByteRange range;         // [begin, end) within [0, file_size); empty = the whole file
};

// Receives one fetch's bytes. Called on the Hub's loop thread; must not block for long and
// must not call Resolve(). It may call Fetch()/Cancel() (they only post work).
class FetchSink {
 public:
  virtual ~FetchSink() = default;
  // Consecutive pieces of the range, in order, starting at range.begin, never repeated
  // (a resumed transfer continues where the last delivered byte ended). A non-OK return
  // aborts the fetch, which then ends with OnDone(that status).
  virtual Status OnData(uint64_t offset, const char* data, size_t n) = 0;
  // Receiving in place (optional): memory where up to `max` of the bytes from `offset` on
  // may be received straight from the network, instead of a copy through OnData. *size 0:
  // none (OnData then). Each call that lends memory is followed by exactly one Placed(offset,
  // n) on the same thread before anything else of this fetch, n <= *size (0: nothing came);
  // after it the bytes count as delivered, as with OnData. A non-OK return of either aborts
  // the fetch, as OnData's does.
  virtual Status Space(uint64_t offset, size_t max, char** data, size_t* size) {
    (void)offset;
    (void)max;
    *data = nullptr;
    *size = 0;
    return Status::Ok();
  }
  virtual Status Placed(uint64_t offset, size_t n) {
    (void)offset;
    (void)n;
    return Status::Ok();
  }
  // Exactly once per fetch, last. OK iff every byte of the range was delivered. The sink
  // must stay alive until then.
  virtual void OnDone(Status status) = 0;
  // Backpressure: false when the sink cannot take the bytes at `offset` now (its memory is
  // full). The fetch then pauses (its connection stops reading, so TCP slows the sender)
  // until Hub::WakeSinks(); a paused fetch is exempt from the stall timeout. Called on the
  // Hub's loop thread before each piece.
  virtual bool Ready(uint64_t offset) {
    (void)offset;
    return true;
  }
};

// What the hub says about one file at a revision (HEAD of its resolve URL).
struct FileMetadata {
  std::string commit;  // X-Repo-Commit: the commit the revision resolved to
  std::string etag;    // X-Linked-Etag (LFS sha256) or ETag (git blob sha1), without W/ or quotes
  uint64_t size = 0;   // X-Linked-Size, else Content-Length
  bool lfs = false;    // the hub redirected to another host (the CDN)
};

class Hub {
 public:
  explicit Hub(HubOptions options);
  // Cancels every fetch (each sink gets OnDone(kCancelled)), then joins the loop thread.
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Blocking. GET revision/{ref} for the commit (skipped when ref is 40-hex), then every
  // page of tree/{commit}?recursive=true&expand=false (Link rel="next"). LFS files carry
  // size = lfs.size and lfs_sha256 = lfs.oid. API responses are capped at 64 MiB each.
  // known(commit), when given, is asked once the commit is known: true means the caller
  // already holds that commit's manifest, so the tree is not listed (listed = false). A
  // no-op sync of a branch is then one request.
  Result<ResolvedRevision> Resolve(const std::string& repo, const std::string& ref,
                                   const std::function<bool(const std::string&)>& known = {});

  // Blocking. HEAD {endpoint}/{repo}/resolve/{quote(revision)}/{quote(path)}, following
  // same-origin redirects (resolve-cache, renames) and stopping at a redirect to another
  // host (an LFS file's CDN), whose X-Linked-* headers describe the file. A missing
  // X-Repo-Commit, ETag or size is kPermanent; EntryNotFound is kNotFound.
  Result<FileMetadata> FileInfo(const std::string& repo, const std::string& revision,
                                const std::string& path);

  // Asynchronous. GETs {endpoint}/{repo}/resolve/{commit}/{quote(path)} with a Range for
  // spec.range (an empty range means [0, file_size)), following redirects itself (only
  // http/https, at most 10 hops; Authorization only on the hub's origin), checks every
  // response before its body reaches the sink, resumes a dropped transfer with a Range from
  // the next byte, retries with backoff. Returns an id for Cancel(); never 0. A zero-byte
  // file is done at once (OnDone(OK)) without a request.
  uint64_t Fetch(FetchSpec spec, FetchSink* sink);

  // Cancels a fetch; its sink gets OnDone(kCancelled) unless it already finished. Unknown
  // or finished ids are ignored.
  void Cancel(uint64_t fetch_id);

  // Thread-safe, non-blocking. Cancels every request in flight or waiting for a retry
  // (a blocked Resolve/FileInfo returns kCancelled, each fetch's sink gets OnDone(kCancelled))
  // and refuses later ones with kCancelled. For a caller that must stop now, e.g. a daemon
  // on SIGTERM while the hub is unreachable and requests sit in backoff.
  void Stop();

  // Caps the sum of all fetches' body rates (a token bucket, live). 0 = unlimited.
  void SetMaxRate(uint64_t bytes_per_second);
  // Thread-safe, non-blocking: fetches paused because their sink was not Ready() ask again.
  void WakeSinks();

  struct Counters {
    uint64_t requests = 0;     // HTTP requests sent (each redirect hop counts)
    uint64_t body_bytes = 0;   // file bytes handed to sinks
    uint64_t retries = 0;      // attempts beyond the first, over all requests
    uint64_t connections = 0;  // connections opened (the rest of the requests reused one)
    // Times a request waiting out a backoff on a clock other than the system one (a FakeClock)
    // looked at it: a test that moves the clock waits for two more looks to know the wait
    // has seen the new time (and acted on it, or not), instead of sleeping.
    uint64_t clock_checks = 0;
    // The quickest API answer so far, request to response, in microseconds (0: none yet,
    // or a clock that did not move): the link's round trip plus the hub's own time.
    uint64_t api_round_trip_us = 0;
    // Of body_bytes, those received straight into the sink's memory (FetchSink::Space: the
    // range reader, net/range_reader.h), not copied through OnData.
    uint64_t placed_bytes = 0;
  };
  Counters counters() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};


}  // namespace modelsync::net
