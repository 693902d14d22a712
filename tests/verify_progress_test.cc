// engine::Verify's progress (engine/recovery.h VerifyOptions::on_progress): a large file
// reports its bytes while it is hashed, not only when it ends (a 5 GB shard showed nothing
// for seconds and then 100 %).
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/pull.h"
#include "engine/recovery.h"
#include "fixtures/fixtures.h"
#include "support/memory_hub.h"

using namespace modelsync;
using namespace modelsync::testing;

TEST_CASE("verify reports the bytes of a large file while it hashes them") {
  fixtures::FixtureOptions fo;
  fo.weights_bytes = 64u << 20;
  fo.only = {"model"};
  FixtureDir fx(fo);
  MemoryHub hub(fx.path());
  engine::Env env = hub.env();
  TempDir dir;
  engine::PullOptions po;
  po.root = dir.path();
  po.repo = fixtures::kModelRepo;
  auto pulled = engine::Pull(env, po, nullptr);
  REQUIRE_MESSAGE(pulled.ok(), pulled.status().ToString());

  std::vector<engine::VerifyProgress> seen;
  engine::VerifyOptions vo;
  vo.root = dir.path();
  vo.threads = 1;
  vo.progress_every = std::chrono::milliseconds(1);  // 64 MiB take ~35 ms at 1.8 GB/s
  vo.on_progress = [&](const engine::VerifyProgress& p) { seen.push_back(p); };
  auto v = engine::Verify(env, vo);
  REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  CHECK(v->issues.empty());
  REQUIRE_FALSE(seen.empty());
  const engine::VerifyProgress& last = seen.back();
  CHECK(last.files_done == last.files_total);
  CHECK(last.bytes_done == last.bytes_total);
  CHECK(last.bytes_total >= fo.weights_bytes);
  // Bytes moved between two reports while no file ended: the large file, as it hashed.
  int moving = 0;
  for (size_t i = 1; i < seen.size(); ++i) {
    CHECK(seen[i].bytes_done >= seen[i - 1].bytes_done);
    CHECK(seen[i].files_done >= seen[i - 1].files_done);
    if (seen[i].files_done == seen[i - 1].files_done && seen[i].bytes_done > seen[i - 1].bytes_done)
      ++moving;
  }
  INFO("reports: " << seen.size());
  CHECK(moving >= 2);
}
