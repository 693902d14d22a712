#include "net/hub_options.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

namespace modelsync::net {
namespace {

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

// The token file is the one file net/ reads. Tokens are short; cap the read at 64 KiB.
std::string ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string data(64 * 1024, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  return Trim(std::move(data));
}

}  // namespace

std::string NormalizeEndpoint(std::string endpoint) {
  endpoint = Trim(std::move(endpoint));
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

bool IsTruthyEnvValue(const char* value) {
  if (value == nullptr) return false;
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  v = Trim(v);
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

HubOptions HubOptionsFromEnv() {
  HubOptions o;
  if (const char* e = Env("HF_ENDPOINT")) o.endpoint = NormalizeEndpoint(e);
  o.offline = IsTruthyEnvValue(std::getenv("HF_HUB_OFFLINE"));
  if (const char* t = Env("HF_TOKEN")) {
    o.token = Trim(t);
  } else if (const char* t2 = Env("HUGGING_FACE_HUB_TOKEN")) {
    o.token = Trim(t2);
  } else if (const char* p = Env("HF_TOKEN_PATH")) {
    o.token = ReadTokenFile(p);
  } else if (const char* home = Env("HF_HOME")) {
    o.token = ReadTokenFile(std::string(home) + "/token");
  } else if (const char* xdg = Env("XDG_CACHE_HOME")) {
    o.token = ReadTokenFile(std::string(xdg) + "/huggingface/token");
  } else if (const char* h = Env("HOME")) {
    o.token = ReadTokenFile(std::string(h) + "/.cache/huggingface/token");
  }
  return o;
}

}  // namespace modelsync::net
