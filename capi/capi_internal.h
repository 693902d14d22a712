// Internal to capi/: the definitions of the C API's handles and the helpers every entry
// point uses (errors, strings out, the Env of a root, the per-root call mutex). The entry
// points are in capi_core.cc (version, errors, configuration, roots, cancellation),
// capi_pull.cc (pull, its events and result, sync) and capi_root.cc (reading, keeping and
// watching a root).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/env.h"
#include "engine/pull.h"
#include "engine/repo_ref.h"
#include "modelsync/modelsync.h"

struct ms_config {
  modelsync::engine::Config config;
  uint64_t max_rate = 0;
  int connections = 0;
  bool no_wait = false;
};

struct ms_root {
  std::string path;
  ms_config config;
  std::atomic<uint64_t> max_rate{0};
  // LMDB allows one open of a log per process (storage/event_log.h): every call on a root
  // path takes this mutex, shared by every handle of that path in the process, so calls from
  // several threads run one at a time instead of failing with "already open".
  std::shared_ptr<std::mutex> calls;
};

struct ms_cancel {
  std::atomic<bool> fired{false};
};

struct ms_pull_options {
  std::string revision, model_id;
  std::vector<std::string> include, exclude;
  bool any_format = false;
  ms_event_fn fn = nullptr;
  void* user = nullptr;
  ms_cancel* cancel = nullptr;
};

struct ms_pull_result {
  modelsync::engine::PullSummary summary;
  std::string ref, json;
};

namespace modelsync::capi {

namespace engine = modelsync::engine;
using nlohmann::json;

// The calling thread's last error (ms_last_error*): cleared, set from a Status.
void ClearError();
const std::string& LastErrorMessage();
const std::string& LastErrorKind();
long LastErrorDetail();
ms_code Fail(const Status& s);
ms_code Invalid(const std::string& message);

// Runs body, turning an escaping exception (out of memory, a bug) into an error.
template <typename F>
ms_code Guard(F&& body) {
  ClearError();
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(Status::IOError("out of memory"));
  } catch (const std::exception& e) {
    return Fail(Status::Permanent(std::string("internal error: ") + e.what()));
  } catch (...) {
    return Fail(Status::Permanent("internal error"));
  }
}

// A malloc'ed copy the caller frees with ms_free.
char* Dup(const std::string& s);
// NULL -> "".
std::string Str(const char* s);
// *json_out = the document (when json_out is not NULL); MS_OK.
ms_code Out(const json& j, char** json_out);
engine::Env EnvOf(const ms_root* root);
// The call mutex of a root path, shared by every ms_root of that path in this process.
std::shared_ptr<std::mutex> CallMutexFor(const std::string& path);
// Whether path holds a modelsync root (.modelsync/).
bool IsRoot(const std::string& path);
// The repo a text names in this root (org/name, org/name@rev, a URL, a model id).
Result<engine::NamedRepo> Named(const ms_root* root, const char* text);

}  // namespace modelsync::capi
