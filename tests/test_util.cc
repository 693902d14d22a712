#include "test_util.h"

namespace modelsync::testing {

using modelsync::v1::Event;

Event Ranges(uint64_t transfer, uint64_t begin, uint64_t end, int64_t time_ms) {
  Event e;
  e.set_time_ms(time_ms);
  auto* r = e.mutable_ranges_committed();
  r->set_transfer_id(transfer);
  auto* br = r->add_ranges();
  br->set_begin(begin);
  br->set_end(end);
  return e;
}

std::vector<Event> OneOfEachKind() {
  std::vector<Event> v;
  int64_t t = 1'764'000'000'000;
  auto next = [&]() -> Event& {
    v.emplace_back();
    v.back().set_time_ms(t += 1000);
    return v.back();
  };
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const std::string sha = std::string(64, 'a');
  {
    auto* e = next().mutable_repo_tracked();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_ref("main");
    e->set_model_id("qwen");
    e->add_include("*.safetensors");
    e->add_include("*.json");
    e->add_exclude("*.bin");
    e->set_every_ms(6 * 3600 * 1000);
    e->set_endpoint("https://huggingface.co");
  }
  {
    auto* e = next().mutable_revision_resolved();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_ref("main");
    e->set_commit(commit);
    e->set_endpoint("https://huggingface.co");
    for (int i = 0; i < 40; ++i) {
      auto* f = e->mutable_manifest()->add_files();
      f->set_path("model-" + std::to_string(i) + "-of-40.safetensors");
      f->set_size(5'000'000'000ull + i);
      f->set_git_oid(std::string(40, static_cast<char>('0' + i % 10)));
      f->set_lfs_sha256(i % 2 ? sha : "");
    }
  }
  {
    auto* e = next().mutable_transfer_started();
    e->set_transfer_id(7);
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_commit(commit);
    e->set_path("model-1-of-40.safetensors");
    e->set_content_id(sha);
    e->set_size(5'000'000'001ull);
    e->set_lfs(true);
  }
  {
    auto* e = next().mutable_ranges_committed();
    e->set_transfer_id(7);
    auto* r = e->add_ranges();
    r->set_begin(0);
    r->set_end(8'388'608);
    r = e->add_ranges();
    r->set_begin(16'777'216);
    r->set_end(25'165'824);
  }
  {
    auto* e = next().mutable_blob_verified();
    e->set_transfer_id(7);
    e->set_content_id(sha);
    e->set_size(5'000'000'001ull);
  }
  {
    auto* e = next().mutable_transfer_failed();
    e->set_transfer_id(8);
    e->set_reason("sha256 mismatch: got bbbb, want aaaa");
    e->set_code(9);
    e->set_discarded(true);
  }
  {
    auto* e = next().mutable_file_materialized();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_commit(commit);
    e->set_path("config.json");
    e->set_content_id(std::string(40, 'c'));
  }
  {
    auto* e = next().mutable_file_removed();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_path("old.json");
    e->set_commit(commit);
  }
  {
    auto* e = next().mutable_revision_activated();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_commit(commit);
    e->set_model_id("qwen");
    e->set_ref("main");
    e->add_include("*.safetensors");
    e->add_exclude("*.bin");
  }
  {
    auto* e = next().mutable_marker_written();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_model_id("qwen");
  }
  {
    auto* e = next().mutable_marker_removed();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_model_id("qwen");
  }
  {
    auto* e = next().mutable_sync_failed();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
    e->set_reason("the hub answered 503 five times");
    e->set_code(6);
  }
  {
    auto* e = next().mutable_repo_untracked();
    e->set_repo("mlx-community/Qwen2.5-0.5B-Instruct-4bit");
  }
  {
    auto* e = next().mutable_blob_removed();
    e->set_content_id(sha);
    e->set_reason("unreferenced");
  }
  return v;
}

}  // namespace modelsync::testing
