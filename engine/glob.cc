#include "engine/glob.h"

namespace modelsync::engine {
namespace {

// UTF-8 to code points; an invalid byte b becomes U+DC00+b (Python's surrogateescape).
std::u32string Decode(std::string_view s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((c >> 6) != 2) ok = false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (ok) {
      // Reject overlong forms, surrogates and out-of-range values as Python's decoder does.
      static const char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) ok = false;
    }
    if (!ok) {
      out.push_back(0xDC00 + b);
      ++i;
    } else {
      out.push_back(cp);
      i += static_cast<size_t>(len);
    }
  }
  return out;
}

}  // namespace

Glob::Glob(std::string_view pattern) : pattern_(pattern) {
  const std::u32string pat = Decode(pattern);
  const size_t n = pat.size();
  size_t i = 0;
  while (i < n) {
    char32_t c = pat[i++];
    if (c == U'*') {
      if (tokens_.empty() || tokens_.back().kind != Token::kStar) tokens_.push_back({Token::kStar});
    } else if (c == U'?') {
      tokens_.push_back({Token::kAnyChar});
    } else if (c == U'[') {
      size_t j = i;
      if (j < n && pat[j] == U'!') ++j;
      if (j < n && pat[j] == U']') ++j;
      while (j < n && pat[j] != U']') ++j;
      if (j >= n) {
        tokens_.push_back({Token::kLiteral, U'['});
        continue;
      }
      // Split at the '-'s exactly as fnmatch.translate does.
      std::vector<std::u32string> chunks;
      bool has_dash = pat.substr(i, j - i).find(U'-') != std::u32string::npos;
      if (!has_dash) {
        chunks.push_back(pat.substr(i, j - i));
      } else {
        size_t k = pat[i] == U'!' ? i + 2 : i + 1;
        for (;;) {
          size_t f = k < j ? pat.substr(0, j).find(U'-', k) : std::u32string::npos;
          if (f == std::u32string::npos) break;
          chunks.push_back(pat.substr(i, f - i));
          i = f + 1;
          k = f + 3;
        }
        std::u32string last = pat.substr(i, j - i);
        if (!last.empty())
          chunks.push_back(last);
        else
          chunks.back().push_back(U'-');
        for (size_t m = chunks.size() - 1; m > 0; --m) {
          if (chunks[m - 1].back() > chunks[m].front()) {
            chunks[m - 1] = chunks[m - 1].substr(0, chunks[m - 1].size() - 1) + chunks[m].substr(1);
            chunks.erase(chunks.begin() + static_cast<long>(m));
          }
        }
      }
      i = j + 1;
      // Members in order; `join` marks a range-forming '-' between two chunks.
      struct Member {
        char32_t c;
        bool join;
      };
      std::vector<Member> members;
      for (size_t m = 0; m < chunks.size(); ++m) {
        if (m > 0) members.push_back({U'-', true});
        for (char32_t ch : chunks[m]) members.push_back({ch, false});
      }
      if (members.empty()) {
        tokens_.push_back({Token::kNever});
        continue;
      }
      if (members.size() == 1 && members[0].c == U'!' && !members[0].join) {
        tokens_.push_back({Token::kAnyChar});
        continue;
      }
      Class cls;
      size_t p = 0;
      if (members[0].c == U'!') {
        cls.negate = true;
        p = 1;
      }
      // A class body as Python's re parses it: x, or x '-' y where '-' is a join.
      while (p < members.size()) {
        char32_t lo = members[p].c;
        if (p + 2 < members.size() + 0 && members[p + 1].join) {
          cls.ranges.push_back({lo, members[p + 2].c});
          p += 3;
        } else {
          cls.ranges.push_back({lo, lo});
          ++p;
        }
      }
      classes_.push_back(std::move(cls));
      tokens_.push_back({Token::kClass, 0, classes_.size() - 1});
    } else {
      tokens_.push_back({Token::kLiteral, c});
    }
  }
}

bool Glob::MatchOne(const Token& t, char32_t c) const {
  switch (t.kind) {
    case Token::kLiteral:
      return t.c == c;
    case Token::kAnyChar:
      return true;
    case Token::kNever:
      return false;
    case Token::kStar:
      return false;
    case Token::kClass: {
      const Class& cls = classes_[t.cls];
      bool in = false;
      for (auto [lo, hi] : cls.ranges)
        if (c >= lo && c <= hi) in = true;
      return in != cls.negate;
    }
  }
  return false;
}

bool Glob::Matches(std::string_view path) const {
  const std::u32string s = Decode(path);
  // Classic single-backtrack wildcard matching: each token but '*' consumes one character.
  size_t ti = 0, si = 0;
  size_t star_t = SIZE_MAX, star_s = 0;
  while (si < s.size()) {
    if (ti < tokens_.size() && tokens_[ti].kind == Token::kStar) {
      star_t = ti++;
      star_s = si;
    } else if (ti < tokens_.size() && MatchOne(tokens_[ti], s[si])) {
      ++ti;
      ++si;
    } else if (star_t != SIZE_MAX) {
      ti = star_t + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (ti < tokens_.size() && tokens_[ti].kind == Token::kStar) ++ti;
  return ti == tokens_.size();
}

bool FnmatchCase(std::string_view pattern, std::string_view path) {
  return Glob(pattern).Matches(path);
}

PathFilter::PathFilter(const std::vector<std::string>& include,
                       const std::vector<std::string>& exclude) {
  auto add = [](std::vector<Glob>& out, const std::string& p) {
    out.emplace_back(!p.empty() && p.back() == '/' ? p + "*" : p);
  };
  for (const auto& p : include) add(include_, p);
  for (const auto& p : exclude) add(exclude_, p);
}

bool PathFilter::Keep(std::string_view path) const {
  if (!include_.empty()) {
    bool any = false;
    for (const auto& g : include_) any = any || g.Matches(path);
    if (!any) return false;
  }
  for (const auto& g : exclude_)
    if (g.Matches(path)) return false;
  return true;
}

}  // namespace modelsync::engine
