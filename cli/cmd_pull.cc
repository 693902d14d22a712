// modelsync pull: the CLI face of engine::Pull (progress bar, --json lines, exit status).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "engine/gguf_convert.h"
#include "engine/pull.h"
#include "engine/status.h"

namespace modelsync::cli {
namespace {

// Renders pull progress as a terminal bar, JSON lines, or nothing.
class PullPrinter final : public engine::PullObserver {
 public:
  explicit PullPrinter(const OutputFlags& flags)
      : json_(flags.json), bar_("pull", !flags.json && !flags.quiet && ProgressWanted()),
        quiet_(flags.quiet) {}

  void OnWaitingForLock(const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (json_) Emit({{"event", "waiting"}, {"message", message}});
    else if (!quiet_) std::fprintf(stderr, "%s\n", message.c_str());
  }
  void OnResolved(const std::string& repo, const std::string& ref, const std::string& commit,
                  uint64_t files, uint64_t bytes_total, uint64_t bytes_to_fetch) override {
    std::lock_guard<std::mutex> lock(mu_);
    resolved_total_ = bytes_total;
    if (json_) {
      Emit({{"event", "resolved"}, {"repo", repo}, {"ref", ref}, {"commit", commit},
            {"files", files}, {"bytes_total", bytes_total}, {"bytes_to_fetch", bytes_to_fetch}});
    } else if (!quiet_) {
      std::fprintf(stderr, "%s@%s -> %s: %llu files, %s, %s to fetch\n", repo.c_str(),
                   ref.c_str(), commit.substr(0, 12).c_str(),
                   static_cast<unsigned long long>(files), FormatBytes(bytes_total).c_str(),
                   FormatBytes(bytes_to_fetch).c_str());
    }
  }
  void OnProgress(uint64_t done, uint64_t total, uint64_t files_done,
                  uint64_t files_total) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (json_) {
      Emit({{"event", "progress"}, {"bytes_done", done}, {"bytes_total", total},
            {"files_done", files_done}, {"files_total", files_total}});
    } else {
      bar_.Update(done, total, files_done, files_total);
    }
  }
  void OnFileDone(const std::string& path, uint64_t size, bool fetched) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (json_) Emit({{"event", "file_done"}, {"path", path}, {"size", size}, {"fetched", fetched}});
  }
  void OnWarning(const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (json_) Emit({{"event", "warning"}, {"message", message}});
    else if (bar_.enabled()) bar_.Note("warning: " + message);
    else std::fprintf(stderr, "warning: %s\n", message.c_str());
  }
  // From the hub's thread: the user hears every wait, with when it ends.
  void OnRetry(const std::string& message, std::chrono::milliseconds delay) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string at = ClockTimeAfter(delay);
    if (json_) {
      Emit({{"event", "retry"}, {"message", message}, {"delay_ms", delay.count()},
            {"retry_at", at}});
    } else if (!quiet_) {
      std::string line = message + (delay.count() >= 1000 ? "; retrying at " + at : "");
      if (bar_.enabled()) bar_.Note(line);
      else std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  void Done(const engine::PullSummary& s) {
    std::lock_guard<std::mutex> lock(mu_);
    bar_.Finish();
    if (json_) {
      nlohmann::json done = engine::PullDoneJson(s);
      for (const auto& [path, where] : s.kept)
        Emit({{"event", "kept"}, {"path", path}, {"kept_as", where}});
      Emit(done);
      if (s.model_checked)
        Emit({{"event", "model"}, {"model_type", s.model_type}, {"quantization", s.quantization},
              {"tensors", s.tensors}, {"parameters", s.parameters}});
      if (!s.note.empty()) Emit({{"event", "note"}, {"message", s.note}});
    } else if (quiet_) {
      std::printf("%s\n", s.model_dir.c_str());
    } else {
      for (const auto& [path, where] : s.kept)
        std::printf("kept your file %s: it stood where the revision puts its own; it is now "
                    "%s\n", path.c_str(), where.c_str());
      if (s.model_checked)
        std::printf("%s model, %s, %llu tensors, ~%s parameters: checks passed\n",
                    s.model_type.c_str(), s.quantization.c_str(),
                    static_cast<unsigned long long>(s.tensors),
                    FormatCount(s.parameters).c_str());
      if (!s.note.empty()) std::printf("note: %s\n", s.note.c_str());
      std::string marker = s.marker_written ? "marker " + s.marker_path
                                            : "no marker: " + s.marker_note;
      if (!s.previous_marker.empty())
        marker += "\n  (the marker of its former id, " + s.previous_marker + ", was removed)";
      std::printf("%s %s at %s%s\n  %s\n  %s\n  %llu files, %s; fetched %s in %.1fs\n",
                  s.repo.c_str(),
                  s.up_to_date ? (s.offline ? "is complete (offline: not checked against the hub)"
                                            : "is up to date")
                               : (s.marker_written ? "is ready" : "is synced"),
                  s.commit.substr(0, 12).c_str(), "", s.model_dir.c_str(), marker.c_str(),
                  static_cast<unsigned long long>(s.files), FormatBytes(s.bytes_total).c_str(),
                  FormatBytes(s.bytes_fetched).c_str(), s.seconds);
    }
  }
  void Fail(const Status& st) {
    std::lock_guard<std::mutex> lock(mu_);
    bar_.Finish();
    if (json_) Emit(ErrorJson(st));
    else std::fprintf(stderr, "modelsync pull: %s\n", st.message().c_str());
  }
  // Stopped by a signal: what the log says is kept of the revision the pull was fetching.
  void Interrupted(const std::string& root, const std::string& repo, const Interrupts& intr) {
    std::lock_guard<std::mutex> lock(mu_);
    bar_.Finish();
    uint64_t kept = 0, total = resolved_total_;
    if (auto st = engine::ReadStatus(CliEnv(), root, repo); st.ok() && !st->repos.empty()) {
      const engine::RepoStatus& rs = st->repos.front();
      if (rs.active_commit.empty() || !rs.update_available) {
        kept = rs.bytes_done;
        total = rs.bytes_total;
      } else {
        kept = total > rs.update_bytes ? total - rs.update_bytes : 0;
      }
    }
    if (json_) {
      Emit({{"event", "interrupted"}, {"repo", repo}, {"signal", intr.SignalName()},
            {"bytes_kept", kept}, {"bytes_total", total}, {"exit", intr.ExitCode()}});
    } else {
      std::fprintf(stderr,
                   "interrupted (%s): %s of %s kept; run the same command to resume\n",
                   intr.SignalName().c_str(), FormatBytes(kept).c_str(),
                   FormatBytes(total).c_str());
    }
  }

 private:
  static void Emit(const nlohmann::json& j) { EmitJson(j); }
  // Local wall-clock time `d` from now, "20:41:03".
  static std::string ClockTimeAfter(std::chrono::milliseconds d) {
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + d);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
  }
  std::mutex mu_;  // the hub's thread reports retries while the pull's thread draws
  bool json_;
  ProgressBar bar_;
  bool quiet_;
  uint64_t resolved_total_ = 0;
};

}  // namespace

void RegisterPull(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<engine::PullOptions>();
  auto flags = std::make_shared<OutputFlags>();
  auto no_wait = std::make_shared<bool>(false);
  auto hf_cache = std::make_shared<std::string>();
  auto convert = std::make_shared<bool>(false);
  auto gguf_file = std::make_shared<std::string>();
  auto quantize = std::make_shared<int>(0);
  auto max_rate = std::make_shared<std::string>();
  auto rate = std::make_shared<std::atomic<uint64_t>>(0);
  CLI::App* cmd = app.add_subcommand(
      "pull",
      "Download a repo (or bring it up to date) into <root>/models/<org>/<name>/, every file\n"
      "verified against the hub's hashes, then write the empty marker <root>/<model-id>.\n"
      "An interrupted pull resumes where its durable bytes end.");
  cmd->add_option("repo", opts->repo,
                  "Repo id (mlx-community/Qwen2.5-0.5B-Instruct-4bit), with a revision "
                  "(org/name@rev, org/name:rev), a hub URL (https://huggingface.co/org/name, "
                  ".../tree/REV), a model id of this root or a catalog name (qwen2.5-0.5b)")
      ->required();
  cmd->add_option("--revision", opts->revision,
                  "Branch, tag, commit, or a short commit (7+ hex digits)")
      ->capture_default_str();
  cmd->add_option("--id", opts->model_id, "Marker file name (default: the repo's name)");
  cmd->add_option("--include", opts->include,
                  "Only files matching this glob ('*' crosses '/'); repeatable");
  cmd->add_option("--exclude", opts->exclude, "Skip files matching this glob; repeatable");
  cmd->add_option("--connections", opts->connections, "Most parallel connections (default 16): a pull starts with 8 (16 on a "
                  "far link) and doubles them while the download rate still grows")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-rate", *max_rate, "Bandwidth cap for this pull, e.g. 20MB/s, 500KiB/s");
  cmd->add_flag("--no-wait", *no_wait, "Fail at once if another modelsync holds the root");
  cmd->add_flag("--any-format", opts->any_format,
                "Download a GGUF-only or PyTorch-only repo anyway (MLX cannot load it; no marker "
                "is written unless the model checks pass)");
  cmd->add_flag("--convert", *convert,
                "A GGUF repo: fetch its .gguf file (only that one) and convert it into an MLX\n"
                "model filed as <org>/<file stem>-mlx; a PyTorch repo (pytorch_model.bin, no\n"
                ".safetensors): fetch its .bin shards, configuration and tokenizer files and\n"
                "convert them into <org>/<name>-mlx. Either gets its own marker (--id, default\n"
                "the converted repo's name); see `modelsync help convert`");
  cmd->add_option("--file", *gguf_file,
                  "With --convert: the .gguf file to convert, when the repo has several");
  cmd->add_option("--quantize", *quantize,
                  "With --convert: 4 or 8, float and K-quant matrices become MLX affine, group 64")
      ->check(CLI::IsMember({4, 8}));
  AddHfCacheOption(cmd, hf_cache.get(),
                   "Also put the model into the Hugging Face cache (modelsync export): DIR, else\n"
                   "$HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub");
  AddRootOption(cmd, &opts->root);
  AddEndpointOption(cmd, &opts->endpoint);
  AddOutputFlags(cmd, flags.get());
  cmd->footer(
      "Environment: MODELSYNC_ROOT, HF_ENDPOINT, HF_TOKEN / HF_TOKEN_PATH / $HF_HOME/token,\n"
      "HF_HUB_OFFLINE=1 (no network: succeeds only if the model is already complete).\n"
      "Exit status: 0 the model is complete and verified; non-zero otherwise.");
  cmd->callback([opts, flags, no_wait, hf_cache, convert, gguf_file, quantize, max_rate, rate, cmd,
                 &ctx]() {
    opts->wait_for_lock = !*no_wait;
    PullPrinter printer(*flags);
    if (!max_rate->empty()) {
      auto r = ParseRate(*max_rate);
      if (!r.ok()) {
        printer.Fail(r.status().With("--max-rate"));
        ctx.exit_code = ExitCodeFor(r.status());
        return;
      }
      rate->store(*r);
      opts->max_rate = rate.get();
    }
    if (Status s = ReadRepoArgument(opts->root, &opts->repo, &opts->revision,
                                    cmd->count("--revision") > 0, flags->json || flags->quiet);
        !s.ok()) {
      printer.Fail(s);
      ctx.exit_code = ExitCodeFor(s);
      return;
    }
    std::string file, converted_id;
    bool torch = false;
    if (*convert || !gguf_file->empty() || *quantize) {
      Status s = !*convert ? Status::InvalidArgument("--file and --quantize go with --convert")
                 : !opts->include.empty() || !opts->exclude.empty()
                     ? Status::InvalidArgument(
                           "--convert fetches one .gguf file: name it with --file, not "
                           "--include/--exclude")
                     : Status::Ok();
      engine::ConvertSource source;
      if (s.ok()) {
        auto f = engine::PickConvertSource(CliEnv(), opts->root, opts->repo, opts->revision, opts->endpoint,
                                           *gguf_file);
        if (f.ok()) source = *f;
        else s = f.status();
      }
      if (!s.ok()) {
        printer.Fail(s);
        ctx.exit_code = ExitCodeFor(s);
        return;
      }
      // GGUF: that one file; PyTorch: "" (the pulled directory is the source).
      file = source.torch ? std::string() : source.file;
      torch = source.torch;
      opts->include = source.include;
      opts->any_format = true;
      converted_id = opts->model_id;  // --id names the converted model
      opts->model_id.clear();
    }
    Interrupts interrupts;
    opts->cancel = interrupts.flag();
    auto r = engine::Pull(CliEnv(), *opts, &printer);
    if (!r.ok() && r.status().IsCancelled() && interrupts.signal() != 0) {
      printer.Interrupted(opts->root, opts->repo, interrupts);
      ctx.exit_code = interrupts.ExitCode();
      return;
    }
    if (!r.ok()) {
      printer.Fail(r.status());
      ctx.exit_code = ExitCodeFor(r.status());
      return;
    }
    printer.Done(*r);
    if (!file.empty() || torch) {
      ctx.exit_code = ConvertAfterPull(opts->root, r->repo, r->commit, r->model_dir, file,
                                       converted_id, opts->endpoint, *quantize, flags->json);
      if (ctx.exit_code != 0) return;
    }
    if (cmd->count("--hf-cache") > 0) {
      if (Status s = ExportAfterPull(opts->root, r->repo, *hf_cache, flags->json); !s.ok()) {
        printer.Fail(s);
        ctx.exit_code = ExitCodeFor(s);
      }
    }
  });
}

}  // namespace modelsync::cli
