// convert FILE.gguf|DIR / pull --convert into a root: staging under the root lock, the
// source hashed beside the conversion, adoption as add-local (engine/gguf_convert.h,
// engine/torch_convert.h, CONVERT.md).
#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "base/hash.h"
#include "engine/add_local.h"
#include "engine/gguf_convert.h"
#include "engine/hub_config.h"
#include "engine/journal.h"
#include "engine/recovery_util.h"
#include "engine/root_path.h"
#include "engine/torch_convert.h"
#include "net/hub.h"
#include "storage/blob_store.h"
#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

// The directory holding path, opened, and path's last component.
Result<std::pair<std::unique_ptr<storage::Dir>, std::string>> OpenParent(const Env& env,
                                                                         const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  MS_ASSIGN_OR_RETURN(auto d, env.fs->OpenRoot(dir, false));
  return std::make_pair(std::move(d), slash == std::string::npos ? path : path.substr(slash + 1));
}

// sha256 and size of a file; kCancelled as soon as `stop` or `*cancel` is set (checked
// every MiB).
Result<std::pair<std::string, uint64_t>> HashSource(const Env& env, const std::string& path,
                                                    const std::atomic<bool>& stop,
                                                    const std::atomic<bool>* cancel) {
  MS_ASSIGN_OR_RETURN(auto parent, OpenParent(env, path));
  MS_ASSIGN_OR_RETURN(auto f, parent.first->OpenFile(parent.second, storage::OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(auto info, f->Stat());
  Hasher h(HashKind::kSha256, info.size);
  std::vector<char> buf(1u << 20);
  uint64_t off = 0;
  for (;;) {
    if (stop.load() || (cancel && cancel->load()))
      return Status::Cancelled("hashing " + path + " stopped");
    MS_ASSIGN_OR_RETURN(size_t n, f->PRead(off, buf.data(), buf.size()));
    if (n == 0) break;
    h.Update(buf.data(), n);
    off += n;
  }
  return std::make_pair(h.FinishHex(), off);
}

// The sha256 of a pulled GGUF (pull --convert, the daemon, rebuild's re-conversion) taken
// from the log instead of read again: the revision lists the file with that content id, the
// blob is verified, and the source path is the blob itself (same device and inode, so a file
// a user put in its place is hashed). sha256 and size, as HashSource gives; nullopt when any
// of that does not hold.
std::optional<std::pair<std::string, uint64_t>> PulledSourceSha256(
    const Env& env, const State& state, storage::BlobStore& blobs, const ConvertModelOptions& o,
    const std::string& source) {
  if (o.source_repo.empty() || o.source_commit.empty() || o.source_file.empty()) return std::nullopt;
  auto repo = state.repos.find(o.source_repo);
  if (repo == state.repos.end()) return std::nullopt;
  auto rev = repo->second.revisions.find(o.source_commit);
  if (rev == repo->second.revisions.end()) return std::nullopt;
  for (const auto& f : rev->second.files) {
    if (f.path() != o.source_file) continue;
    const std::string& id = f.lfs_sha256();
    auto verified = state.blobs.find(id);
    if (id.size() != 64 || !storage::BlobStore::IsValidId(id) || verified == state.blobs.end() ||
        verified->second != f.size())
      return std::nullopt;
    auto parent = OpenParent(env, source);
    if (!parent.ok()) return std::nullopt;
    auto at_source = parent->first->Stat(parent->second);
    auto in_store = blobs.Stat(id);
    if (!at_source.ok() || !in_store.ok() || at_source->dev != in_store->dev ||
        at_source->ino != in_store->ino || at_source->size != f.size())
      return std::nullopt;
    return std::make_pair(id, f.size());
  }
  return std::nullopt;
}

}  // namespace

Result<ConvertModelResult> ConvertModel(const Env& env, const ConvertModelOptions& o) {
  if (o.model_id.empty()) return Status::InvalidArgument("--id MODEL_ID is required");
  if (o.quantize_bits != 0 && o.quantize_bits != 4 && o.quantize_bits != 8)
    return Status::InvalidArgument("--quantize takes 4 or 8");
  if (o.root.empty()) return Status::InvalidArgument("no root given (use --root or MODELSYNC_ROOT)");
  MS_ASSIGN_OR_RETURN(std::string root, ResolveRoot(env, o.root, /*create=*/true));
  // The root's lock is held from here to the end: the staging directory is ours.
  JournalOptions jo;
  jo.clock = env.clock;
  MS_ASSIGN_OR_RETURN(auto journal, Journal::Open(root, false, jo));
  MS_ASSIGN_OR_RETURN(auto root_dir, env.fs->OpenRoot(root, true));
  MS_ASSIGN_OR_RETURN(auto blobs, storage::BlobStore::Open(*root_dir));
  storage::Dir* blobs_dir = &blobs->dir();
  if (blobs_dir->Stat(kConvertStaging).ok()) MS_RETURN_IF_ERROR(blobs_dir->RemoveTree(kConvertStaging));
  const std::string staging = blobs_dir->path() + "/" + kConvertStaging;

  ConvertModelResult out;
  out.source = o.source;
  if (auto abs = env.fs->ResolvePath(o.source, false); abs.ok()) out.source = *abs;
  // What is hashed for the log: the GGUF file; or the PyTorch source's main file (its
  // pytorch_model.bin or index) and every file it reads.
  const bool torch = LooksLikeTorchSource(env, out.source);
  std::string main = out.source, dir;
  std::vector<std::string> inputs;
  if (torch) {
    MS_ASSIGN_OR_RETURN(TorchSource ts, FindTorchSource(env, out.source));
    dir = ts.dir;
    main = ts.dir + "/" + ts.main;
    inputs = ts.weights;
    inputs.insert(inputs.end(), ts.copied.begin(), ts.copied.end());
    if (std::find(inputs.begin(), inputs.end(), ts.main) == inputs.end()) inputs.insert(inputs.begin(), ts.main);
  }
  out.converter = torch ? kTorchConverterVersion : kConverterVersion;
  if (o.skip_if_converted && !o.source_label.empty() && !o.repo.empty()) {
    const auto& repos = journal->state().repos;
    auto it = repos.find(o.repo);
    if (it != repos.end() && it->second.marker && !it->second.active_commit.empty()) {
      const RepoState& rs = it->second;
      auto rev = rs.revisions.find(rs.active_commit);
      if (rev != rs.revisions.end()) {
        const auto& d = rev->second.derived_from;
        if (d.source() == o.source_label && d.converter() == out.converter &&
            d.quantize_bits() == static_cast<uint32_t>(o.quantize_bits) &&
            ModelIdOf(rs) == o.model_id) {
          out.up_to_date = true;
          out.source_sha256 = d.source_sha256();
          out.summary.repo = o.repo;
          out.summary.commit = rs.active_commit;
          out.summary.model_dir = root + "/models/" + o.repo;
          out.summary.marker_path = root + "/" + o.model_id;
          out.summary.files = rs.materialized.size();
          out.summary.up_to_date = true;
          out.summary.marker_written = true;
          return out;
        }
      }
    }
  }
  ConvertOptions co;
  co.source = out.source;
  co.out_dir = staging;
  co.progress = o.progress;
  co.quantize_bits = o.quantize_bits;
  co.cancel = o.cancel;
  // The source is hashed on another thread while it is converted (two reads of it, on two
  // cores, mostly from the page cache).
  Result<std::pair<std::string, uint64_t>> hashed = Status::Cancelled("not hashed");
  std::vector<Derivation::Input> hashed_inputs;
  Status inputs_status = Status::Ok();
  // Stopped when the conversion fails or is cancelled: a refused file is not read to its end.
  std::atomic<bool> stop{false};
  const auto known = torch ? std::nullopt : PulledSourceSha256(env, journal->state(), *blobs, o, out.source);
  std::thread hasher([&] {
    if (known) {  // a verified blob: its content id, not read again
      hashed = *known;
      return;
    }
    hashed = HashSource(env, main, stop, o.cancel);
    if (!hashed.ok()) return;
    for (const auto& in : inputs) {
      if (o.cancel && o.cancel->load()) break;
      if (dir + "/" + in == main) {  // the index (or the one .bin) is read once
        hashed_inputs.push_back({in, hashed->first, hashed->second});
        continue;
      }
      auto h = HashSource(env, dir + "/" + in, stop, o.cancel);
      if (!h.ok()) {
        inputs_status = h.status();
        break;
      }
      hashed_inputs.push_back({in, h->first, h->second});
    }
  });
  auto converted = torch ? ConvertTorch(env, co) : ConvertGguf(env, co);
  if (!converted.ok()) stop.store(true);
  hasher.join();
  MS_ASSIGN_OR_RETURN(out.report, std::move(converted));
  auto finish = [&](Status st) {
    (void)blobs_dir->RemoveTree(kConvertStaging);
    return st;
  };
  if (!hashed.ok()) return finish(hashed.status());
  if (!inputs_status.ok()) return finish(inputs_status);
  out.source_sha256 = hashed->first;
  out.source_hashed = !known;
  if (!o.expect_source_sha256.empty() && o.expect_source_sha256 != out.source_sha256)
    return finish(Status::Integrity(out.source + " has sha256 " + out.source_sha256 +
                                    ", not the " + o.expect_source_sha256 +
                                    " the model was converted from: not converted again"));

  AddLocalOptions ao;
  ao.root = root;
  ao.dir = staging;
  ao.model_id = o.model_id;
  ao.repo = o.repo;
  ao.derived.converter = out.converter;
  ao.derived.source = o.source_label.empty() ? out.source : o.source_label;
  ao.derived.source_sha256 = hashed->first;
  ao.derived.source_size = hashed->second;
  ao.derived.inputs = std::move(hashed_inputs);
  ao.derived.quantize_bits = static_cast<uint32_t>(o.quantize_bits);
  ao.derived.source_repo = o.source_repo;
  ao.derived.source_commit = o.source_commit;
  ao.derived.source_file = o.source_file;
  ao.move_files = true;
  ao.known_sha256 = out.report.sha256;
  auto added = AddLocalTo(env, ao, root, *journal);
  if (!added.ok()) return finish(added.status());
  out.summary = std::move(*added);
  MS_RETURN_IF_ERROR(finish(Status::Ok()));
  return out;
}

namespace {

bool IsGguf(const std::string& p) { return p.size() > 5 && p.compare(p.size() - 5, 5, ".gguf") == 0; }

// The only .gguf of a listed revision; several or none: kInvalidArgument saying so.
Result<std::string> OnlyGguf(const std::string& repo, const std::string& commit,
                             const std::vector<v1::FileEntry>& files) {
  std::vector<const v1::FileEntry*> found;
  for (const auto& f : files)
    if (IsGguf(f.path())) found.push_back(&f);
  if (found.empty())
    return Status::InvalidArgument(repo + "@" + commit.substr(0, 12) +
                                   " holds no .gguf file and no pytorch_model.bin: --convert "
                                   "converts GGUF and PyTorch repos");
  if (found.size() == 1) return found.front()->path();
  std::string list;
  for (const auto* f : found) list += "\n  " + f->path() + " (" + std::to_string(f->size()) + " bytes)";
  return Status::InvalidArgument(repo + " holds " + std::to_string(found.size()) +
                                 " GGUF files; pass --file NAME to choose one (Q4_0, Q4_1 and "
                                 "Q8_0 convert bit for bit):" + list);
}

}  // namespace

Result<std::string> PickGgufFile(const Env& env, const std::string& repo,
                                 const std::string& revision, const std::string& endpoint,
                                 const std::string& file) {
  if (!file.empty()) {
    if (!IsGguf(file))
      return Status::InvalidArgument("--file " + file + " is not a .gguf file: --convert converts GGUF");
    return file;
  }
  if (env.config.offline)
    return Status::InvalidArgument("offline (HF_HUB_OFFLINE): name the file to convert with --file NAME.gguf");
  net::Hub hub(HubOptionsOf(env, endpoint));
  MS_ASSIGN_OR_RETURN(auto resolved, hub.Resolve(repo, revision.empty() ? "main" : revision));
  return OnlyGguf(repo, resolved.commit, resolved.files);
}

namespace {

std::string GlobOf(const std::string& path) {  // the glob matching exactly this path
  std::string g;
  for (char c : path) g += (c == '*' || c == '?' || c == '[') ? std::string("[") + c + "]" : std::string(1, c);
  return g;
}

// What to convert among a revision's files (PickConvertSource without a --file).
Result<ConvertSource> ChooseConvertSource(const std::string& repo, const std::string& commit,
                                          const std::vector<v1::FileEntry>& files) {
  ConvertSource out;
  bool gguf = false, bin = false, safetensors = false;
  auto ends = [](const std::string& p, const std::string& s) {
    return p.size() >= s.size() && p.compare(p.size() - s.size(), s.size(), s) == 0;
  };
  for (const auto& f : files) {
    const std::string& p = f.path();
    if (p.find('/') != std::string::npos) continue;  // top-level weights only
    gguf |= ends(p, ".gguf");
    safetensors |= ends(p, ".safetensors");
    bin |= p == "pytorch_model.bin" || p == "pytorch_model.bin.index.json";
  }
  if (gguf || !bin) {
    MS_ASSIGN_OR_RETURN(out.file, OnlyGguf(repo, commit, files));
    out.include = {GlobOf(out.file)};
    return out;
  }
  if (safetensors)
    return Status::InvalidArgument(repo + "@" + commit.substr(0, 12) +
                                   " has .safetensors weights beside its PyTorch ones: MLX loads "
                                   "those as they are; pull it without --convert");
  out.torch = true;
  // '*' crosses '/' in modelsync's globs: the top level only, through one path each.
  for (const auto& f : files) {
    const std::string& p = f.path();
    if (p.find('/') != std::string::npos) continue;
    if ((p.rfind("pytorch_model", 0) == 0 && (ends(p, ".bin") || ends(p, ".bin.index.json"))) ||
        ends(p, ".json") || ends(p, ".txt") || ends(p, ".model") || ends(p, ".jinja") ||
        ends(p, ".tiktoken"))
      out.include.push_back(GlobOf(p));
  }
  return out;
}

}  // namespace

Result<ConvertSource> PickConvertSource(const Env& env, const std::string& root,
                                        const std::string& repo, const std::string& revision,
                                        const std::string& endpoint, const std::string& file) {
  if (!file.empty()) {
    ConvertSource out;
    MS_ASSIGN_OR_RETURN(out.file, PickGgufFile(env, repo, revision, endpoint, file));
    out.include = {GlobOf(out.file)};
    return out;
  }
  if (env.config.offline) {
    // The files of the revision this root already holds: the log has its listing.
    MS_ASSIGN_OR_RETURN(std::string r, ResolveRoot(env, root, /*create=*/false));
    MS_ASSIGN_OR_RETURN(auto journal, OpenJournal(env, r, /*read_only=*/true, false));
    const auto& repos = journal->state().repos;
    auto it = repos.find(repo);
    const RevisionState* rev = nullptr;
    if (it != repos.end() && !it->second.active_commit.empty()) {
      auto rv = it->second.revisions.find(it->second.active_commit);
      if (rv != it->second.revisions.end()) rev = &rv->second;
    }
    if (!rev)
      return Status::Offline("offline (HF_HUB_OFFLINE) and " + repo + " was never pulled into " + r +
                             ": its files cannot be listed; unset HF_HUB_OFFLINE, or name the "
                             ".gguf with --file");
    return ChooseConvertSource(repo, rev->commit, rev->files);
  }
  net::Hub hub(HubOptionsOf(env, endpoint));
  MS_ASSIGN_OR_RETURN(auto resolved, hub.Resolve(repo, revision.empty() ? "main" : revision));
  return ChooseConvertSource(repo, resolved.commit, resolved.files);
}

ConvertModelOptions ConvertPulledOptions(const std::string& root, const std::string& repo,
                                         const std::string& commit, const std::string& model_dir,
                                         const std::string& file, const std::string& model_id,
                                         const std::string& endpoint, int quantize_bits) {
  ConvertModelOptions o;
  o.quantize_bits = quantize_bits;
  o.root = root;
  o.source = file.empty() ? model_dir : model_dir + "/" + file;
  o.repo = file.empty() ? repo + "-mlx" : ConvertedRepoFor(repo, file);
  o.model_id = model_id.empty() ? o.repo.substr(o.repo.find('/') + 1) : model_id;
  o.source_label = endpoint + "/" + repo + "@" + commit + (file.empty() ? "" : "/" + file);
  o.source_repo = repo;
  o.source_commit = commit;
  o.source_file = file;
  o.skip_if_converted = true;
  return o;
}

std::string ConvertedRepoFor(const std::string& repo, const std::string& file) {
  const size_t slash = repo.find('/');
  std::string leaf = file.substr(file.find_last_of('/') == std::string::npos ? 0 : file.find_last_of('/') + 1);
  if (leaf.size() > 5 && leaf.compare(leaf.size() - 5, 5, ".gguf") == 0) leaf.resize(leaf.size() - 5);
  return repo.substr(0, slash) + "/" + leaf + "-mlx";
}

}  // namespace modelsync::engine
