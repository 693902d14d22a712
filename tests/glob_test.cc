// engine/glob (Python fnmatchcase semantics, checked against CPython-generated vectors) and
// engine/repo_path (validation of untrusted names).
#include <doctest/doctest.h>

#include <string>

#include "engine/glob.h"
#include "engine/repo_path.h"

using namespace modelsync;
using namespace modelsync::engine;

namespace {
struct Vector {
  const char* pattern;
  const char* path;
  bool match;
};
const Vector kVectors[] = {
#include "glob_vectors.inc"
};
}  // namespace

TEST_CASE("Glob agrees with CPython's fnmatch.fnmatchcase on every generated vector") {
  int n = 0, matches = 0;
  for (const Vector& v : kVectors) {
    CAPTURE(v.pattern);
    CAPTURE(v.path);
    CHECK(FnmatchCase(v.pattern, v.path) == v.match);
    ++n;
    matches += v.match;
  }
  MESSAGE(n << " vectors, " << matches << " matching");
  CHECK(n > 2900);
}

TEST_CASE("Glob: the semantics the hub CLI relies on") {
  CHECK(FnmatchCase("*.json", "a/b/config.json"));  // '*' crosses '/'
  CHECK(FnmatchCase("*.safetensors", "model-00001-of-00002.safetensors"));
  CHECK_FALSE(FnmatchCase("*.json", "config.json.bak"));
  CHECK(FnmatchCase("[!a]*", "b.txt"));
  CHECK_FALSE(FnmatchCase("[!a]*", "a.txt"));
  CHECK(FnmatchCase("[^a]", "^"));          // '^' is not negation
  CHECK(FnmatchCase("\\*", "\\anything"));  // no escaping
  CHECK_FALSE(FnmatchCase("\\*", "*"));
}

TEST_CASE("PathFilter: include/exclude like filter_repo_objects") {
  PathFilter all;
  CHECK(all.Keep("anything/at/all"));
  PathFilter f({"*.json", "tokenizer*"}, {"*secret*"});
  CHECK(f.Keep("config.json"));
  CHECK(f.Keep("tokenizer.model"));
  CHECK_FALSE(f.Keep("model.safetensors"));
  CHECK_FALSE(f.Keep("a/secret.json"));
  PathFilter dir({"configs/"}, {});
  CHECK(dir.Keep("configs/a.json"));
  CHECK(dir.Keep("configs/deep/b.json"));
  CHECK_FALSE(dir.Keep("configs"));
  CHECK_FALSE(dir.Keep("other/configs/a.json"));
  PathFilter ex({}, {"*.bin", "original/"});
  CHECK(ex.Keep("model.safetensors"));
  CHECK_FALSE(ex.Keep("pytorch_model.bin"));
  CHECK_FALSE(ex.Keep("original/params.json"));
}

TEST_CASE("ValidateRepoPath accepts hub paths and refuses hostile ones, naming them") {
  for (std::string ok :
       std::vector<std::string>{"config.json", "a/b/c.safetensors", ".gitattributes", "dir/.hidden",
                                "unicode/\xc3\xa9t\xc3\xa9.txt", "a..b", "...",
                                std::string(255, 'x'), "x/" + std::string(255, 'y')})
    CHECK_MESSAGE(ValidateRepoPath(ok).ok(), ok);
  std::string long_path;
  while (long_path.size() <= 4096) long_path += "abcdefgh/";
  long_path += "z";
  for (std::string bad :
       {std::string(""), std::string("/etc/passwd"), std::string("../x"), std::string("a/../b"),
        std::string("a/./b"), std::string("."), std::string("a/.."), std::string("a//b"),
        std::string("a/"), std::string("a\\b"), std::string("a\0b", 3), std::string("a\nb"),
        std::string("a\x7f"), std::string("\xff\xfe"), std::string("\xc0\xaf"),
        std::string(256, 'x'), long_path}) {
    Status s = ValidateRepoPath(bad);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().find("refusing file path") != std::string::npos);
    if (bad.size() < 100 && bad.find('\0') == std::string::npos &&
        bad.find('\n') == std::string::npos && bad.find('\x7f') == std::string::npos)
      CHECK(s.message().find(bad) != std::string::npos);
  }
  CHECK(PathComponents("a/b/c") == std::vector<std::string_view>{"a", "b", "c"});
}

TEST_CASE("ValidateRepoId follows the hub's rules") {
  for (const char* ok : {"mlx-community/Qwen2.5-0.5B-Instruct-4bit", "a/b", "A_1/x.y-z", "org/_x_"})
    CHECK_MESSAGE(ValidateRepoId(ok).ok(), ok);
  std::string long_part(97, 'a');
  for (std::string bad :
       {std::string("gpt2"), std::string("a/b/c"), std::string("/b"), std::string("a/"),
        std::string("a/-b"), std::string("a/b."), std::string(".a/b"), std::string("a/b--c"),
        std::string("a/b..c"), std::string("a/b c"), std::string("a/b.git"),
        std::string("a/\xc3\xa9"), "a/" + long_part, std::string("../b")}) {
    Status s = ValidateRepoId(bad);
    CHECK_MESSAGE(s.code() == StatusCode::kInvalidArgument, bad);
  }
}

TEST_CASE("ValidateModelId: one safe file name") {
  CHECK(ValidateModelId("Qwen2.5-0.5B-Instruct-4bit").ok());
  CHECK(ValidateModelId("my model").ok());
  for (std::string bad :
       {std::string(""), std::string(".hidden"), std::string(".."), std::string("a/b"),
        std::string("a\\b"), std::string("models"), std::string("a\tb"), std::string(256, 'm')})
    CHECK(ValidateModelId(bad).code() == StatusCode::kInvalidArgument);
}

#include "engine/disk_space.h"

TEST_CASE("CheckSpace: a shortfall is kNoSpace with the exact numbers") {
  CHECK(CheckSpace(100, 100, "/r").ok());
  Status s = CheckSpace(3221225472, 1073741824, "/data/models");
  CHECK(s.IsNoSpace());
  CHECK(s.message().find("3221225472") != std::string::npos);
  CHECK(s.message().find("1073741824") != std::string::npos);
  CHECK(s.message().find("2147483648") != std::string::npos);  // what to free
  CHECK(s.message().find("/data/models") != std::string::npos);
}
