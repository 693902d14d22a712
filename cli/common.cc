#include <sys/stat.h>
#include <cctype>
#include <cstdlib>
#include "cli/common.h"

#include "engine/repo_ref.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace modelsync::cli {

std::string DefaultRoot() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/modelsync";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/modelsync";
}

Status CheckReadRoot(const std::string& root) {
  struct stat st;
  if (::stat((root + "/.modelsync").c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::Ok();
  if (root == DefaultRoot() && ::stat(root.c_str(), &st) != 0) return Status::Ok();
  bool exists = ::stat(root.c_str(), &st) == 0;
  return Status::InvalidArgument(
      root + (exists ? " is not a modelsync root (it has no .modelsync/ directory)"
                     : " does not exist") +
      ": check --root and MODELSYNC_ROOT (a root is made by the first `modelsync pull`)");
}

namespace {
// --token, when given: it replaces HF_TOKEN and the token files for this run only. It is
// kept in memory, sent as the hub's Authorization header, and never logged or written.
std::string& TokenFlag() {
  static std::string token;
  return token;
}
// --ca-bundle, when given: replaces CURL_CA_BUNDLE / REQUESTS_CA_BUNDLE / SSL_CERT_FILE.
std::string& CaBundleFlag() {
  static std::string file;
  return file;
}
bool& InsecureRedirectsFlag() {
  static bool allow = false;
  return allow;
}
}  // namespace

const engine::Env& CliEnv() {
  static const engine::Env env = [] {
    auto config = engine::ConfigFromEnvironment();
    if (!config.ok()) std::exit(ReportError(config.status()));
    if (!TokenFlag().empty()) config->token = TokenFlag();
    if (!CaBundleFlag().empty()) config->ca_file = CaBundleFlag();
    if (InsecureRedirectsFlag()) config->allow_insecure_redirects = true;
    engine::Env e = engine::RealEnv(*config);
    e.on_lock_wait = [](const std::string& message) {
      std::fprintf(stderr, "%s\n", message.c_str());
    };
    return e;
  }();
  return env;
}

void AddRootOption(CLI::App* cmd, std::string* root) {
  *root = DefaultRoot();
  cmd->add_option("--root", *root,
                  "The modelsync root (models/, markers and .modelsync/ live here).\n"
                  "Default: $MODELSYNC_ROOT, else $XDG_DATA_HOME/modelsync, else\n"
                  "~/.local/share/modelsync")
      ->envname("MODELSYNC_ROOT")
      ->type_name("DIR");
}

Status ReadRepoArgument(const std::string& root, std::string* repo, std::string* revision,
                        bool revision_given, bool quiet) {
  auto named = engine::ResolveRepoArgument(CliEnv(), root, *repo);
  if (!named.ok()) return named.status();
  if (!named->expanded.empty() && !quiet) std::fprintf(stderr, "%s\n", named->expanded.c_str());
  if (!named->revision.empty()) {
    if (revision == nullptr)
      return Status::InvalidArgument("'" + *repo + "' names a revision (" + named->revision +
                                     "), but this command works on the active one: give " +
                                     named->repo + " alone");
    if (revision_given && *revision != named->revision)
      return Status::InvalidArgument("'" + *repo + "' names revision " + named->revision +
                                     " but --revision says " + *revision + ": give one");
    *revision = named->revision;
  }
  *repo = named->repo;
  return Status::Ok();
}

int ReportError(const Status& s) {
  std::fprintf(stderr, "modelsync: %s\n", s.message().c_str());
  return ExitCodeFor(s);
}

nlohmann::json ErrorJson(const Status& s) {
  return {{"event", "error"},
          {"code", std::string(StatusCodeName(s.code()))},
          {"exit", ExitCodeFor(s)},
          {"message", s.message()}};
}

int ReportError(const Status& s, bool json) {
  if (json) EmitJson(ErrorJson(s));
  return ReportError(s);
}

void EmitJson(const nlohmann::json& j) {
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

void AddEndpointOption(CLI::App* cmd, std::string* endpoint, bool with_token) {
  cmd->add_option("--endpoint", *endpoint,
                  "Hub base URL (default: $HF_ENDPOINT, else https://huggingface.co)")
      ->type_name("URL")
      ->check([](const std::string& url) {
        Status s = engine::CheckEndpoint(url);
        return s.ok() ? std::string() : s.message();
      });
  if (!with_token) return;
  cmd->add_option("--ca-bundle", CaBundleFlag(),
                  "PEM file of certificate authorities to trust instead of the system's (a "
                  "TLS-inspecting proxy, a private mirror); default: $CURL_CA_BUNDLE, "
                  "$REQUESTS_CA_BUNDLE, $SSL_CERT_FILE")
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--allow-insecure-redirects", InsecureRedirectsFlag(),
                "Follow a redirect from https to plain http (refused by default: what follows "
                "would travel in cleartext)");
  cmd->add_option("--token", TokenFlag(),
                  "Hub access token for gated and private repos, for this run (default: "
                  "$HF_TOKEN, else the token file); sent only to the hub, never logged or "
                  "written")
      ->type_name("TOKEN");
}

void AddOutputFlags(CLI::App* cmd, OutputFlags* flags) {
  cmd->add_flag("--json", flags->json, "One JSON object per line on stdout, for scripts and apps");
  cmd->add_flag("--quiet,-q", flags->quiet, "No progress display, only errors");
}

int ExitCodeFor(const Status& s) { return ExitClass(s); }

}  // namespace modelsync::cli
