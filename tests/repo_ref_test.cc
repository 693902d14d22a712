// engine/repo_ref.h: what people paste for a repo, read without a log or a network.
#include <doctest/doctest.h>

#include "engine/repo_ref.h"
#include "engine/recovery_util.h"

using modelsync::engine::ExpandShortCommit;
using modelsync::engine::LooksLikeShortCommit;
using modelsync::engine::ParseRepoRef;

TEST_CASE("ParseRepoRef: every pasted form of one repo and revision") {
  struct Case {
    const char* text;
    const char* repo;
    const char* revision;
  };
  for (const Case& c : {
           Case{"org/name", "org/name", ""},
           Case{"  org/name\n", "org/name", ""},
           Case{"org/name@v1", "org/name", "v1"},
           Case{"org/name:v1", "org/name", "v1"},
           Case{"org/name@refs/pr/1", "org/name", "refs/pr/1"},
           Case{"https://huggingface.co/org/name", "org/name", ""},
           Case{"https://huggingface.co/org/name/", "org/name", ""},
           Case{"http://127.0.0.1:8080/org/name/tree/v1", "org/name", "v1"},
           Case{"https://huggingface.co/org/name/tree/main/sub/dir", "org/name", "main"},
           Case{"https://huggingface.co/org/name/blob/abc1234/config.json", "org/name", "abc1234"},
           Case{"https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/a.bin", "org/name",
                "refs/pr/1"},
           Case{"https://huggingface.co/org/name/commit/0123456789abcdef0123456789abcdef01234567",
                "org/name", "0123456789abcdef0123456789abcdef01234567"},
           Case{"https://huggingface.co/org/name?library=mlx#top", "org/name", ""},
           Case{"https://huggingface.co/org/name/discussions/3", "org/name", ""},
           Case{"hf.co/org/name", "org/name", ""},
           Case{"huggingface.co/org/name/tree/v2", "org/name", "v2"},
           Case{"my-tiny", "my-tiny", ""},
           Case{"my-tiny@v1", "my-tiny", "v1"},
       }) {
    INFO(c.text);
    auto r = ParseRepoRef(c.text);
    REQUIRE(r.ok());
    CHECK(r->repo == c.repo);
    CHECK(r->revision == c.revision);
  }
  for (const char* bad : {"", "   ", "org/name@", "org/name:", "a/b/c",
                          "https://huggingface.co/datasets/org/data",
                          "https://huggingface.co/spaces/org/app", "https://huggingface.co/org",
                          "https://huggingface.co/"}) {
    INFO(bad);
    auto r = ParseRepoRef(bad);
    CHECK(!r.ok());
    CHECK(r.status().code() == modelsync::StatusCode::kInvalidArgument);
  }
  CHECK(ParseRepoRef("https://huggingface.co/datasets/org/data").status().message().find(
            "dataset") != std::string::npos);
}

TEST_CASE("short commits: 7 to 39 hex digits, expanded only when the log knows one") {
  CHECK(LooksLikeShortCommit("abc1234"));
  CHECK(!LooksLikeShortCommit("abc123"));
  CHECK(!LooksLikeShortCommit("ABC1234"));
  CHECK(!LooksLikeShortCommit("v1.2.3.4"));
  CHECK(!LooksLikeShortCommit(std::string(40, 'a')));
  modelsync::engine::State st;
  auto& rs = st.repos["org/name"];
  rs.repo = "org/name";
  const std::string a = "abc1234" + std::string(33, '0');
  const std::string b = "abc1235" + std::string(33, '1');
  rs.revisions[a].commit = a;
  rs.revisions[b].commit = b;
  CHECK(*ExpandShortCommit(st, "org/name", "abc1234") == a);
  CHECK(*ExpandShortCommit(st, "org/name", "main") == "main");
  CHECK(ExpandShortCommit(st, "org/name", "fff0000")->empty());   // the hub decides
  CHECK(ExpandShortCommit(st, "org/other", "abc1234")->empty());
  auto ambiguous = ExpandShortCommit(st, "org/name", "abc123" + std::string(1, '4'));
  CHECK(ambiguous.ok());
  rs.revisions["abc1234" + std::string(33, '2')].commit = "abc1234" + std::string(33, '2');
  ambiguous = ExpandShortCommit(st, "org/name", "abc1234");
  CHECK(!ambiguous.ok());
  CHECK(ambiguous.status().message().find("ambiguous") != std::string::npos);
}
