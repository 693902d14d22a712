// libFuzzer target: the hub's JSON answers other than the tree listing (net/hub_json.h,
// net/errors.h). The first byte picks what the rest is:
//   0  the body of /api/models/{repo}/revision/{rev}          -> ParseRevisionSha
//   1  an error response: status, X-Error-Code, X-Error-Message, body -> MapHttpError
//   2  a token and a text                                     -> Scrub
// Invariants: an accepted revision is 40 lower-case hex digits; an error response always
// maps to a non-ok Status with a message, from which ScrubStatus removes the token; Scrub
// terminates and leaves no occurrence of a token that cannot overlap "<token>".
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "net/errors.h"
#include "net/hub_json.h"

namespace {

using modelsync::fuzz::Input;
namespace net = modelsync::net;

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const char* const kCodes[] = {
    "", "GatedRepo", "RevisionNotFound", "EntryNotFound", "RepoNotFound", "DisabledRepo", "x"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  net::ErrorContext ctx{"org/model", "main", "model.safetensors", false};
  switch (in.Byte() % 3) {
    case 0: {
      auto r = net::ParseRevisionSha(std::string(in.Rest()), ctx);
      if (r.ok()) {
        FUZZ_CHECK(r->size() == 40 && IsLowerHex(*r));
      } else {
        FUZZ_CHECK(!r.status().message().empty());
      }
      break;
    }
    case 1: {
      net::ResponseHead head;
      uint8_t s = in.Byte();
      head.status = 400 + s % 200;
      ctx.has_token = (s & 0x80) != 0;
      head.headers.emplace_back("x-error-code", kCodes[in.Byte() % std::size(kCodes)]);
      if (std::string_view m = in.Chunk(); !m.empty()) {
        head.headers.emplace_back("x-error-message", std::string(m));
      }
      const std::string secret = "hf_FuzzSecretToken0123";
      std::string body(in.Rest());
      auto st = net::MapHttpError(ctx, head, body);
      FUZZ_CHECK(!st.ok());
      FUZZ_CHECK(!st.message().empty());
      auto scrubbed = net::ScrubStatus(st, secret);
      FUZZ_CHECK(scrubbed.code() == st.code());
      FUZZ_CHECK(scrubbed.message().find(secret) == std::string::npos);
      break;
    }
    case 2: {
      std::string secret(in.Chunk());
      std::string text(in.Rest());
      std::string out = net::Scrub(text, secret);
      if (!secret.empty() && secret.find_first_of("<token>") == std::string::npos) {
        FUZZ_CHECK(out.find(secret) == std::string::npos);
      }
      if (secret.empty()) FUZZ_CHECK(out == text);
      break;
    }
  }
  return 0;
}
