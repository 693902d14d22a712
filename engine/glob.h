// Include/exclude globs, matched exactly as huggingface_hub's `filter_repo_objects` matches
// them (which is Python's fnmatch.fnmatchcase on POSIX), so `--include`/`--exclude` select
// the same files as `hf download --include/--exclude`.
//
// Pattern semantics (Python's fnmatch.translate, reproduced here, not POSIX fnmatch(3)):
//  - `*` matches any sequence, INCLUDING '/' and newlines; `?` matches one character.
//  - `[...]` a set; `[!...]` its complement (`^` is a literal, not negation); a `]` right
//    after `[` or `[!` is a member; ranges `a-z`; a range whose ends are reversed is dropped
//    (`[z-a]` matches nothing, `[!z-a]` any character); a `[` with no closing `]` is a
//    literal `[`.
//  - Backslash is an ordinary character: there is no escaping.
//  - Matching is on Unicode code points: the UTF-8 of pattern and path are decoded first
//    (bytes that are not valid UTF-8 stand for themselves, as Python's surrogateescape).
//  - The whole path must match (no implicit leading or trailing wildcard).
// Filter semantics (filter_repo_objects):
//  - a pattern ending in '/' gets '*' appended ("configs/" = everything below configs/);
//  - with include patterns, a path is kept only if at least one matches; an EMPTY include
//    list means "no include filter" (the CLI's None), not "nothing";
//  - then a path matching any exclude pattern is dropped.
//  - An empty pattern matches only the empty path (i.e. nothing).
//
// Thread safety: values; a compiled Glob may be used from several threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modelsync::engine {

class Glob {
 public:
  explicit Glob(std::string_view pattern);
  bool Matches(std::string_view path) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Class {
    bool negate = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive
  };
  struct Token {
    enum Kind { kLiteral, kAnyChar, kStar, kClass, kNever } kind;
    char32_t c = 0;
    size_t cls = 0;
  };
  bool MatchOne(const Token& t, char32_t c) const;

  std::string pattern_;
  std::vector<Token> tokens_;
  std::vector<Class> classes_;
};

// Python's fnmatch.fnmatchcase(path, pattern).
bool FnmatchCase(std::string_view pattern, std::string_view path);

class PathFilter {
 public:
  PathFilter() = default;  // keeps everything
  PathFilter(const std::vector<std::string>& include, const std::vector<std::string>& exclude);
  bool Keep(std::string_view path) const;

 private:
  std::vector<Glob> include_, exclude_;
};

}  // namespace modelsync::engine
