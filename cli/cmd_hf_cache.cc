// modelsync export REPO [--hf-cache [DIR]] and modelsync import --hf-cache [DIR] [REPO...]:
// share bytes with the Hugging Face cache (engine/hf_cache.h).
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/hf_cache.h"
#include "engine/repo_ref.h"
#include "engine/report_json.h"

namespace modelsync::cli {
namespace {

const char kCacheHelp[] =
    "The Hugging Face cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else\n"
    "$XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub)";

std::string CacheDir(const std::string& given) {
  return given.empty() ? CliEnv().config.hf_cache : given;
}

// `--hf-cache org/name` takes the repo for the cache directory (DIR is optional): a value that
// is no directory here, reads as a repo id and not as a path, is the repo.
bool TookRepo(std::string* cache_value, std::string* repo) {
  const std::string& v = *cache_value;
  if (v.empty() || v[0] == '/' || v[0] == '.' || v[0] == '~' || v.back() == '/') return false;
  struct stat st;
  if (::stat(v.c_str(), &st) == 0) return false;
  auto ref = engine::ParseRepoRef(v);
  if (!ref.ok() || !ref->revision.empty() || ref->repo.find('/') == std::string::npos) return false;
  *repo = ref->repo;
  cache_value->clear();
  return true;
}

void PrintExport(const engine::HfExport& e) {
  std::printf("%s@%s in the Hugging Face cache: %s\n  %llu files; %llu blobs linked (no extra "
              "bytes), %llu copied (%s, another file system), %llu already there%s\n",
              e.repo.c_str(), e.commit.substr(0, 12).c_str(), e.snapshot.c_str(),
              static_cast<unsigned long long>(e.files), static_cast<unsigned long long>(e.linked),
              static_cast<unsigned long long>(e.copied), FormatBytes(e.bytes_copied).c_str(),
              static_cast<unsigned long long>(e.kept),
              e.ref.empty() ? "" : ("; refs/" + e.ref + " -> " + e.commit.substr(0, 12)).c_str());
}

}  // namespace

void AddHfCacheOption(CLI::App* cmd, std::string* dir, const char* help) {
  cmd->add_option("--hf-cache", *dir, help)->expected(0, 1)->type_name("[DIR]");
}

Status ExportAfterPull(const std::string& root, const std::string& repo, const std::string& dir,
                       bool json) {
  auto r = engine::ExportToHfCache(CliEnv(), root, repo, CacheDir(dir));
  if (!r.ok()) return r.status().WithNote("exporting to the Hugging Face cache");
  if (json) {
    nlohmann::json j = engine::HfExportJson(*r);
    j["event"] = "hf_cache";
    EmitJson(j);
  } else {
    PrintExport(*r);
  }
  return Status::Ok();
}

void RegisterExport(CLI::App& app, CliContext& ctx) {
  struct Opts {
    std::string root, repo, cache;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Put a pulled model into the Hugging Face cache, laid out as huggingface_hub does\n"
      "(models--org--name/blobs, snapshots/<commit>, refs/<ref>), so mlx-lm, transformers and\n"
      "`hf` find it offline. Blobs are hard-linked from modelsync's store: no extra bytes on\n"
      "one file system (copied, and said, across file systems).");
  cmd->add_option("repo", o->repo, "Repo id of a model pulled into this root (org/name)");
  AddHfCacheOption(cmd, &o->cache, kCacheHelp);
  cmd->add_flag("--json", o->json, "One JSON object on stdout");
  AddRootOption(cmd, &o->root);
  cmd->callback([o, &ctx]() {
    if (o->repo.empty()) TookRepo(&o->cache, &o->repo);
    if (o->repo.empty()) {
      ctx.exit_code = ReportError(Status::InvalidArgument("export needs a repo: modelsync "
                                                          "export ORG/NAME [--hf-cache DIR]"),
                                  o->json);
      return;
    }
    auto r = engine::ExportToHfCache(CliEnv(), o->root, o->repo, CacheDir(o->cache));
    if (!r.ok()) {
      ctx.exit_code = ReportError(r.status(), o->json);
      return;
    }
    if (o->json) EmitJson(engine::HfExportJson(*r));
    else PrintExport(*r);
  });
}

void RegisterImport(CLI::App& app, CliContext& ctx) {
  struct Opts {
    std::string root, cache;
    std::vector<std::string> repos;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "import",
      "Adopt the blobs the Hugging Face cache already holds: each file of each snapshot is\n"
      "followed to its blob, hashed and checked against the blob's name (sha256 or git blob\n"
      "sha1) before it becomes a verified blob of this root. A later pull of those repos\n"
      "fetches none of their bytes. The cache is only read.");
  cmd->add_option("repos", o->repos, "Repo ids to import (default: every model in the cache)");
  AddHfCacheOption(cmd, &o->cache, kCacheHelp);
  cmd->add_flag("--json", o->json, "One JSON object per repo on stdout");
  AddRootOption(cmd, &o->root);
  cmd->footer("Exit status: 0 every blob was adopted or already here; 3 some file of the cache "
              "is damaged\n(its bytes do not match its name; the others were adopted).");
  cmd->callback([o, &ctx]() {
    if (std::string repo; TookRepo(&o->cache, &repo)) o->repos.insert(o->repos.begin(), repo);
    auto r = engine::ImportFromHfCache(CliEnv(), o->root, CacheDir(o->cache), o->repos);
    if (!r.ok()) {
      ctx.exit_code = ReportError(r.status(), o->json);
      return;
    }
    bool damaged = false;
    for (const auto& rep : r->repos) {
      damaged = damaged || !rep.damaged.empty();
      if (o->json) {
        EmitJson(engine::HfImportRepoJson(r->cache, rep));
        continue;
      }
      std::printf("%s: %llu blobs adopted (%s), %llu already here; %zu snapshot(s), %llu files\n",
                  rep.repo.c_str(), static_cast<unsigned long long>(rep.adopted),
                  FormatBytes(rep.bytes_adopted).c_str(),
                  static_cast<unsigned long long>(rep.already), rep.snapshots.size(),
                  static_cast<unsigned long long>(rep.files));
      for (const auto& d : rep.damaged) std::fprintf(stderr, "  damaged, not adopted: %s\n", d.c_str());
    }
    if (!o->json) {
      if (r->repos.empty()) std::printf("no model repos in the Hugging Face cache at %s\n", r->cache.c_str());
      for (const auto& s : r->skipped)
        std::fprintf(stderr, "skipped %s: not an org/name model repo\n", s.c_str());
    }
    if (damaged) {
      if (!o->json)
        std::fprintf(stderr, "some files of the cache are damaged: `hf cache verify` names them; "
                             "`modelsync pull` downloads what was not adopted\n");
      ctx.exit_code = 3;
    }
  });
}

}  // namespace modelsync::cli
