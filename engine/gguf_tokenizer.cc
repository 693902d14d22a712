#include "engine/gguf_tokenizer.h"

#include <array>
#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>
#include <nlohmann/json.hpp>

#include "base/path_rules.h"

namespace modelsync::engine {
namespace {

using json = nlohmann::ordered_json;
using plain_json = nlohmann::json;  // sorted keys, logarithmic lookup

// GPT-2's byte alphabet: the printable bytes stand for themselves, the other 68 are
// spelled U+0100.. in byte order.
std::array<uint32_t, 256> ByteAlphabet() {
  std::array<uint32_t, 256> m{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    m[b] = printable ? b : next++;
  }
  return m;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// True when every code point of s (valid UTF-8) is one of the byte alphabet's.
bool InAlphabet(std::string_view s) {
  if (!ValidUtf8(s)) return false;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += len;
    bool ok = (cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 323);
    if (!ok) return false;
  }
  return true;
}

// A token spelled in the byte alphabet: as is when it already is, else each of its bytes
// respelled (transformers' byte_level_tokenizer does the same).
std::string ByteLevelSpelling(const std::string& token) {
  if (InAlphabet(token)) return token;
  static const auto alphabet = ByteAlphabet();
  std::string out;
  for (unsigned char b : token) AppendUtf8(alphabet[b], &out);
  return out;
}

// The split regex a byte-level vocabulary's merges were learned with, by tokenizer.ggml.pre
// (llama.cpp's names; the same table transformers' GGUF loader keeps). Unknown or GPT-2's:
// ByteLevel's own regex.
const char* SplitRegex(const std::string& pre) {
  static const char* kLlama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const char* kQwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::map<std::string, const char*> table = {
      {"llama3", kLlama3},    {"llama-v3", kLlama3},         {"llama-bpe", kLlama3},
      {"falcon3", kLlama3},   {"smaug-bpe", kLlama3},        {"dbrx", kLlama3},
      {"qwen2", kQwen2},      {"deepseek-r1-qwen", kQwen2},  {"megrez", kQwen2},
  };
  auto it = table.find(pre);
  return it == table.end() ? nullptr : it->second;
}

// tokenizer.json must be UTF-8: a token or merge of the file that is not is refused here,
// not passed on (nlohmann throws on it; that is caught and said).
template <typename J>
Result<std::string> DumpStrict(const J& doc) {
  try {
    return doc.dump(2, ' ', false, J::error_handler_t::strict);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(
        std::string("the tokenizer metadata holds text that is not UTF-8 (") + e.what() + ")");
  }
}

json ByteLevel(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return json{{"type", "ByteLevel"},
              {"add_prefix_space", add_prefix_space},
              {"trim_offsets", trim_offsets},
              {"use_regex", use_regex}};
}

Result<const json*> Array(const GgufInfo& info, const char* key, bool required) {
  auto it = info.metadata.find(key);
  if (it == info.metadata.end()) {
    if (!required) return static_cast<const json*>(nullptr);
    return Status::InvalidArgument(std::string("the file has no ") + key +
                                   ": no tokenizer can be rebuilt from it");
  }
  if (!it->is_array()) return Status::InvalidArgument(std::string(key) + " is not an array");
  return &*it;
}

int64_t IntOr(const GgufInfo& info, const char* key, int64_t fallback) {
  auto it = info.metadata.find(key);
  return it != info.metadata.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}


// Code points of valid UTF-8 (a token of a SentencePiece vocabulary), as byte offsets.
std::vector<size_t> CodePointStarts(std::string_view s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  return starts;
}

struct SpmMerge {
  std::string left, right;
  double score;
  size_t left_len, right_len;  // in code points
};

// The merges a SentencePiece BPE vocabulary implies (it stores none), as transformers'
// generate_merges derives them: every split of every token into two tokens of the
// vocabulary, a token's splits ordered by the ids of their parts, then all of them by
// (score, left length, right length), highest first, ties in that order.
std::vector<SpmMerge> DeriveMerges(const std::vector<std::pair<std::string, double>>& scored,
                                   const std::unordered_map<std::string, size_t>& vocab) {
  std::vector<SpmMerge> merges;
  for (const auto& [token, score] : scored) {
    const auto starts = CodePointStarts(token);
    std::vector<SpmMerge> local;
    for (size_t k = 1; k < starts.size(); ++k) {
      std::string l = token.substr(0, starts[k]), r = token.substr(starts[k]);
      if (vocab.count(l) && vocab.count(r))
        local.push_back({std::move(l), std::move(r), score, k, starts.size() - k});
    }
    std::stable_sort(local.begin(), local.end(), [&](const SpmMerge& a, const SpmMerge& b) {
      return std::make_pair(vocab.at(a.left), vocab.at(a.right)) <
             std::make_pair(vocab.at(b.left), vocab.at(b.right));
    });
    for (auto& m : local) merges.push_back(std::move(m));
  }
  std::stable_sort(merges.begin(), merges.end(), [](const SpmMerge& a, const SpmMerge& b) {
    return std::make_tuple(a.score, a.left_len, a.right_len) >
           std::make_tuple(b.score, b.left_len, b.right_len);
  });
  return merges;
}

// tokenizer.ggml.model "llama": SentencePiece BPE with byte fallback (Llama 2, Mistral,
// TinyLlama), as transformers' LlamaTokenizer builds it from a GGUF: Metaspace ("first"),
// merges derived from the scores, control tokens and <unk>/<s>/</s> special.
Result<GgufTokenizerFiles> SentencePieceTokenizer(const GgufInfo& info, uint64_t model_max_length) {
  MS_ASSIGN_OR_RETURN(const json* tokens, Array(info, "tokenizer.ggml.tokens", true));
  MS_ASSIGN_OR_RETURN(const json* scores, Array(info, "tokenizer.ggml.scores", true));
  MS_ASSIGN_OR_RETURN(const json* types, Array(info, "tokenizer.ggml.token_type", false));
  const size_t n = tokens->size();
  if (scores->size() != n || (types && types->size() != n))
    return Status::InvalidArgument("tokenizer.ggml.scores / token_type do not have one entry per token");
  std::unordered_map<std::string, size_t> ids;       // last id wins, as a dict
  std::unordered_map<std::string, size_t> position;  // first position, for the scores
  std::vector<std::pair<std::string, double>> scored;
  for (size_t i = 0; i < n; ++i) {
    if (!(*tokens)[i].is_string() || !(*scores)[i].is_number())
      return Status::InvalidArgument("tokenizer.ggml.tokens[" + std::to_string(i) + "] or its score is malformed");
    const std::string& t = (*tokens)[i].get_ref<const std::string&>();
    if (!ValidUtf8(t))
      return Status::InvalidArgument("tokenizer.ggml.tokens[" + std::to_string(i) + "] is not UTF-8");
    ids[t] = i;
    const double sc = (*scores)[i].get<double>();
    if (auto it = position.find(t); it != position.end()) {
      scored[it->second].second = sc;
    } else {
      position[t] = scored.size();
      scored.emplace_back(t, sc);
    }
  }
  plain_json vocab = plain_json::object();
  for (const auto& [t, id] : ids) vocab[t] = id;
  plain_json merges = plain_json::array();
  for (auto& m : DeriveMerges(scored, ids)) merges.push_back(plain_json::array({m.left, m.right}));

  std::map<size_t, bool> added;  // id -> special
  for (size_t i = 0; i < n && types; ++i) {
    const int64_t t = (*types)[i].is_number_integer() ? (*types)[i].get<int64_t>() : 1;
    const std::string& tok = (*tokens)[i].get_ref<const std::string&>();
    if (t == 3) added[ids[tok]] = true;
    else if (t == 4) added.emplace(ids[tok], false);
  }
  for (const char* dflt : {"<unk>", "<s>", "</s>"})  // LlamaTokenizer's own special tokens
    if (auto it = ids.find(dflt); it != ids.end()) added[it->second] = true;
  json added_tokens = json::array();
  for (const auto& [id, special] : added)
    added_tokens.push_back({{"id", id}, {"content", (*tokens)[id]}, {"single_word", false},
                            {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                            {"special", special}});

  GgufTokenizerFiles out;
  out.vocab_size = n;
  out.bos_id = IntOr(info, "tokenizer.ggml.bos_token_id", -1);
  out.eos_id = IntOr(info, "tokenizer.ggml.eos_token_id", -1);
  auto token_at = [&](int64_t id) -> json {
    if (id < 0 || static_cast<uint64_t>(id) >= n) return nullptr;
    return (*tokens)[id];
  };
  // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
  bool add_bos = true, add_eos = false;
  if (auto it = info.metadata.find("tokenizer.ggml.add_bos_token"); it != info.metadata.end() && it->is_boolean())
    add_bos = it->get<bool>();
  if (auto it = info.metadata.find("tokenizer.ggml.add_eos_token"); it != info.metadata.end() && it->is_boolean())
    add_eos = it->get<bool>();
  json single = json::array(), pair = json::array(), special = json::object();
  auto piece = [](const std::string& id) { return json{{"SpecialToken", {{"id", id}, {"type_id", 0}}}}; };
  auto seq = [](const char* id, int type) { return json{{"Sequence", {{"id", id}, {"type_id", type}}}}; };
  const bool bos = add_bos && token_at(out.bos_id).is_string(), eos = add_eos && token_at(out.eos_id).is_string();
  const std::string bos_s = bos ? token_at(out.bos_id).get<std::string>() : "";
  const std::string eos_s = eos ? token_at(out.eos_id).get<std::string>() : "";
  for (int part = 0; part < 2; ++part) {
    json& v = part == 0 ? single : pair;
    if (bos) v.push_back(piece(bos_s));
    v.push_back(seq("A", 0));
    if (eos) v.push_back(piece(eos_s));
    if (part == 1) {
      if (bos) v.push_back(piece(bos_s));
      v.push_back(seq("B", 1));
      if (eos) v.push_back(piece(eos_s));
    }
  }
  if (bos) special[bos_s] = {{"id", bos_s}, {"ids", {out.bos_id}}, {"tokens", {bos_s}}};
  if (eos) special[eos_s] = {{"id", eos_s}, {"ids", {out.eos_id}}, {"tokens", {eos_s}}};

  plain_json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added_tokens},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}}},
      {"post_processor",
       json{{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", special}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         plain_json::array({plain_json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                            plain_json{{"type", "ByteFallback"}}, plain_json{{"type", "Fuse"}},
                            plain_json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", std::move(vocab)},
        {"merges", std::move(merges)}}},
  };
  MS_ASSIGN_OR_RETURN(out.tokenizer_json, DumpStrict(tok));
  json cfg = {{"tokenizer_class", "LlamaTokenizer"},
              {"add_bos_token", add_bos},
              {"add_eos_token", add_eos},
              {"bos_token", token_at(out.bos_id)},
              {"eos_token", token_at(out.eos_id)},
              {"unk_token", token_at(IntOr(info, "tokenizer.ggml.unknown_token_id", -1))},
              {"pad_token", token_at(IntOr(info, "tokenizer.ggml.padding_token_id", -1))},
              {"clean_up_tokenization_spaces", false},
              {"legacy", false},
              {"model_max_length", model_max_length}};
  if (auto it = info.metadata.find("tokenizer.chat_template"); it != info.metadata.end() && it->is_string())
    cfg["chat_template"] = *it;
  out.tokenizer_config_json = cfg.dump(2, ' ', false, json::error_handler_t::replace);
  out.description = "llama (SentencePiece BPE)";
  return out;
}

}  // namespace

Result<GgufTokenizerFiles> BuildGgufTokenizer(const GgufInfo& info, uint64_t model_max_length) {
  auto model_it = info.metadata.find("tokenizer.ggml.model");
  if (model_it == info.metadata.end() || !model_it->is_string())
    return Status::InvalidArgument(
        "the file has no tokenizer.ggml.model: no tokenizer can be rebuilt from it");
  const std::string model = model_it->get<std::string>();
  if (model == "llama") return SentencePieceTokenizer(info, model_max_length);
  if (model != "gpt2")
    return Status::InvalidArgument(
        "tokenizer.ggml.model is '" + model +
        "': this build rebuilds byte-level BPE ('gpt2': Llama 3, Qwen2, SmolLM2) and "
        "SentencePiece BPE ('llama': Llama 2, Mistral) tokenizers only");
  std::string pre;
  if (auto it = info.metadata.find("tokenizer.ggml.pre"); it != info.metadata.end() && it->is_string())
    pre = it->get<std::string>();

  MS_ASSIGN_OR_RETURN(const json* tokens, Array(info, "tokenizer.ggml.tokens", true));
  MS_ASSIGN_OR_RETURN(const json* merges, Array(info, "tokenizer.ggml.merges", true));
  MS_ASSIGN_OR_RETURN(const json* types, Array(info, "tokenizer.ggml.token_type", false));
  const size_t n = tokens->size();
  if (types && types->size() != n)
    return Status::InvalidArgument("tokenizer.ggml.token_type has " +
                                   std::to_string(types->size()) + " entries for " +
                                   std::to_string(n) + " tokens");
  std::vector<std::string> spelled(n);
  // A std::map, not ordered_json (whose lookup is linear): readers of tokenizer.json do not
  // care about key order. A repeated token keeps its last id, as a Python dict would.
  plain_json vocab = plain_json::object();
  for (size_t i = 0; i < n; ++i) {
    if (!(*tokens)[i].is_string())
      return Status::InvalidArgument("tokenizer.ggml.tokens[" + std::to_string(i) + "] is no string");
    spelled[i] = ByteLevelSpelling((*tokens)[i].get<std::string>());
    vocab[spelled[i]] = i;
  }
  plain_json merge_list = plain_json::array();
  for (const auto& m : *merges) {
    if (!m.is_string()) return Status::InvalidArgument("tokenizer.ggml.merges holds a non-string");
    const std::string s = m.get<std::string>();
    if (!ValidUtf8(s))
      return Status::InvalidArgument("tokenizer.ggml.merges holds an entry that is not UTF-8");
    size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      return Status::InvalidArgument("tokenizer.ggml.merges holds '" + s +
                                     "', not two tokens separated by one space");
    merge_list.push_back(s);
  }

  // Control tokens (type 3) spelled in the byte alphabet become special added tokens;
  // user-defined ones (type 4) plain added tokens, kept whole in the text.
  json added = json::array();
  if (types) {
    static const auto alphabet_ok = [](const std::string& t) { return InAlphabet(t); };
    for (size_t i = 0; i < n; ++i) {
      int64_t t = (*types)[i].is_number_integer() ? (*types)[i].get<int64_t>() : 1;
      const std::string& raw = (*tokens)[i].get_ref<const std::string&>();
      if (t == 3 && alphabet_ok(raw)) {
        added.push_back({{"id", i}, {"content", raw}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}});
      } else if (t == 4 && vocab.contains(raw)) {
        added.push_back({{"id", i}, {"content", raw}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", false}});
      }
    }
  }

  GgufTokenizerFiles out;
  out.vocab_size = n;
  out.bos_id = IntOr(info, "tokenizer.ggml.bos_token_id", -1);
  out.eos_id = IntOr(info, "tokenizer.ggml.eos_token_id", -1);
  const int64_t unk_id = IntOr(info, "tokenizer.ggml.unknown_token_id", -1);
  const int64_t pad_id = IntOr(info, "tokenizer.ggml.padding_token_id", -1);
  auto token_at = [&](int64_t id) -> json {
    if (id < 0 || static_cast<uint64_t>(id) >= n) return nullptr;
    return (*tokens)[id];
  };
  bool add_bos = false;
  if (auto it = info.metadata.find("tokenizer.ggml.add_bos_token");
      it != info.metadata.end() && it->is_boolean())
    add_bos = it->get<bool>();
  bool add_eos = false;
  if (auto it = info.metadata.find("tokenizer.ggml.add_eos_token");
      it != info.metadata.end() && it->is_boolean())
    add_eos = it->get<bool>();

  json pre_tok;
  if (const char* split = SplitRegex(pre)) {
    pre_tok = {{"type", "Sequence"},
               {"pretokenizers",
                json::array({json{{"type", "Split"},
                                  {"pattern", {{"Regex", split}}},
                                  {"behavior", "Isolated"},
                                  {"invert", false}},
                             ByteLevel(false, true, false)})}};
  } else {
    pre_tok = ByteLevel(false, true, true);
  }
  json post = ByteLevel(true, false, true);
  if ((add_bos && token_at(out.bos_id).is_string()) || (add_eos && token_at(out.eos_id).is_string())) {
    // BOS (and EOS) around every sequence, as llama.cpp adds them for this vocabulary.
    json single = json::array(), pair = json::array(), special = json::object();
    auto piece = [](const std::string& id) { return json{{"SpecialToken", {{"id", id}, {"type_id", 0}}}}; };
    auto seq = [](const char* id, int type) { return json{{"Sequence", {{"id", id}, {"type_id", type}}}}; };
    std::string bos = add_bos ? token_at(out.bos_id).get<std::string>() : "";
    std::string eos = add_eos ? token_at(out.eos_id).get<std::string>() : "";
    if (add_bos) single.push_back(piece(bos)), pair.push_back(piece(bos));
    single.push_back(seq("A", 0));
    pair.push_back(seq("A", 0));
    if (add_eos) single.push_back(piece(eos)), pair.push_back(piece(eos));
    if (add_bos) pair.push_back(piece(bos));
    pair.push_back(seq("B", 1));
    if (add_eos) pair.push_back(piece(eos));
    if (add_bos) special[bos] = {{"id", bos}, {"ids", {out.bos_id}}, {"tokens", {bos}}};
    if (add_eos) special[eos] = {{"id", eos}, {"ids", {out.eos_id}}, {"tokens", {eos}}};
    post = {{"type", "Sequence"},
            {"processors",
             json::array({ByteLevel(true, false, true),
                          json{{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair},
                               {"special_tokens", special}}})}};
  }

  plain_json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tok},
      {"post_processor", post},
      {"decoder", ByteLevel(true, true, true)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", std::move(vocab)},
        {"merges", std::move(merge_list)}}},
  };
  MS_ASSIGN_OR_RETURN(out.tokenizer_json, DumpStrict(tok));

  json cfg = {{"tokenizer_class", "GPT2Tokenizer"},
              {"add_bos_token", add_bos},
              {"add_eos_token", add_eos},
              {"add_prefix_space", false},
              {"bos_token", token_at(out.bos_id)},
              {"eos_token", token_at(out.eos_id)},
              {"unk_token", token_at(unk_id)},
              {"pad_token", token_at(pad_id)},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", model_max_length}};
  if (auto it = info.metadata.find("tokenizer.chat_template");
      it != info.metadata.end() && it->is_string())
    cfg["chat_template"] = *it;
  out.tokenizer_config_json = cfg.dump(2, ' ', false, json::error_handler_t::replace);
  out.description = model + (pre.empty() ? "" : " (" + pre + ")");
  return out;
}

}  // namespace modelsync::engine
