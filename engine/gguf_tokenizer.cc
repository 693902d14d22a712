#include "engine/gguf_tokenizer.h"

#include <array>
#include <map>
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

}  // namespace

Result<GgufTokenizerFiles> BuildGgufTokenizer(const GgufInfo& info, uint64_t model_max_length) {
  auto model_it = info.metadata.find("tokenizer.ggml.model");
  if (model_it == info.metadata.end() || !model_it->is_string())
    return Status::InvalidArgument(
        "the file has no tokenizer.ggml.model: no tokenizer can be rebuilt from it");
  const std::string model = model_it->get<std::string>();
  if (model != "gpt2")
    return Status::InvalidArgument(
        "tokenizer.ggml.model is '" + model +
        "': this build rebuilds byte-level BPE tokenizers ('gpt2', as Llama 3, Qwen2 and "
        "SmolLM2 files have); SentencePiece ('llama') and others are not converted yet");
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
  out.tokenizer_json = tok.dump(2, ' ', false, plain_json::error_handler_t::strict);

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
