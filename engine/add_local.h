// AddLocal: adopt a model directory the user already has into the root, as if pulled.
//
// Walks dir (regular files only: a symlink or special file is refused, naming it; .git/ and
// .cache/ skipped; read through env.fs), runs the model checks (model_check.h: GGUF-only / PyTorch-only / no
// weights refused; config, tokenizer, safetensors headers, index, quantization), hashes every
// file with sha256 and records it as an LFS-style FileEntry (lfs_sha256 = sha256, git_oid =
// git blob sha1 of its LFS pointer text): sha256 for all files, so verify re-hashes each
// blob with sha256. Each file is copied into blobs/ (Adopt), then the log gets
// RevisionResolved (ref "local", commit = sha1 hex of the manifest: "path\0size\0sha256\n"
// lines sorted by path), BlobVerified (transfer 0), and after Materialize FileMaterialized,
// RevisionActivated and, after the marker, MarkerWritten — so status/verify/rebuild treat it
// like a pulled model. The source directory is never modified.
//
// Errors: kInvalidArgument (bad ids, unsafe path, not an MLX model), kPermanent (model check),
// kIOError / kNoSpace, kLocked. Thread safety: calling thread only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/pull.h"

namespace modelsync::engine {

class Journal;  // engine/journal.h (internal)

// What a converted model was made from (engine/gguf_convert.h): recorded in its
// RevisionResolved (derived_from) and its endpoint ("convert:<source>").
struct Derivation {
  std::string converter;      // kConverterVersion; "" = not derived
  std::string source;         // the source file's path
  std::string source_sha256;
  uint64_t source_size = 0;
  struct Input {
    std::string path;  // relative to the source's directory
    std::string sha256;
    uint64_t size = 0;
  };
  std::vector<Input> inputs;  // every file read (PyTorch); empty for GGUF
  uint32_t quantize_bits = 0;
  // The pulled repo the source is in (pull --convert; empty for a local file).
  std::string source_repo, source_commit, source_file;
};

struct AddLocalOptions {
  std::string root;
  std::string dir;       // the model directory
  std::string model_id;  // marker name (required)
  std::string repo;      // "org/name"; default "local/<model_id>"
  Derivation derived;
  // The files of dir are moved into the store instead of copied (dir is the caller's own
  // staging directory on the store's file system, flat; it is left empty).
  bool move_files = false;
  // With move_files: sha256 of files the caller wrote and hashed as it wrote them (path ->
  // hex); those are not read again.
  std::map<std::string, std::string> known_sha256;
};

// The name a file being copied in is staged under in blobs/ (removed by gc after a crash).
inline constexpr char kAddLocalTemp[] = "add-local.tmp";

Result<PullSummary> AddLocal(const Env& env, const AddLocalOptions& options);

// As AddLocal, into a root the caller has resolved and whose journal (and so its lock) it
// holds: ConvertModel keeps the lock from staging to marker.
Result<PullSummary> AddLocalTo(const Env& env, const AddLocalOptions& options,
                               const std::string& root, Journal& journal);

}  // namespace modelsync::engine
