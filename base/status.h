// Status and Result: how every modelsync call reports failure (no exceptions across
// module boundaries).
//
// A Status is a code, a message meant for a person, and the original low-level detail
// (errno, CURLcode, MDB error, HTTP status) that callers may log but must not parse.
// Retry decisions switch on code(), never on message text.
//
// Thread safety: values; copy freely.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace modelsync {

enum class StatusCode : int {
  kOk = 0,
  kNotFound,         // a thing that was asked for does not exist
  kCorruption,       // stored data is damaged (log record, snapshot, blob)
  kIOError,          // the file system failed (other than no space)
  kInvalidArgument,  // the caller (or the user) asked for something malformed
  kNoSpace,          // ENOSPC / EDQUOT, or not enough free space for a planned fetch
  kTransient,        // worth retrying: network drop, 5xx, 429, timeouts
  kPermanent,        // not worth retrying: 4xx, protocol violation by the server
  kIntegrity,        // content did not match its hash or size
  kCancelled,        // stopped on request (signal, shutdown)
  kLocked,           // the root is in use by another writer
  kUnauthorized,     // 401/403: log in, or request access
  kOffline,          // HF_HUB_OFFLINE forbids the network
  kVersion,          // written by a newer format than this binary reads
};

std::string_view StatusCodeName(StatusCode code);

class Status;
// The class of a failure as the command line's exit status and the C API's ms_code give
// it: 0 ok, 1 other, 2 invalid argument, 3 damaged (corruption, integrity), 4 locked,
// 5 newer format, 6 no space, 7 network (offline, transient), 8 not found / unauthorized.
// (Cancelled is 1 here; the CLI exits 130/143 for the signal, the C API says cancelled.)
int ExitClass(const Status& s);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }

  static Status NotFound(std::string msg, long detail = 0) { return {StatusCode::kNotFound, std::move(msg), detail}; }
  static Status Corruption(std::string msg, long detail = 0) { return {StatusCode::kCorruption, std::move(msg), detail}; }
  static Status IOError(std::string msg, long detail = 0) { return {StatusCode::kIOError, std::move(msg), detail}; }
  static Status InvalidArgument(std::string msg, long detail = 0) { return {StatusCode::kInvalidArgument, std::move(msg), detail}; }
  static Status NoSpace(std::string msg, long detail = 0) { return {StatusCode::kNoSpace, std::move(msg), detail}; }
  static Status Transient(std::string msg, long detail = 0) { return {StatusCode::kTransient, std::move(msg), detail}; }
  static Status Permanent(std::string msg, long detail = 0) { return {StatusCode::kPermanent, std::move(msg), detail}; }
  static Status Integrity(std::string msg, long detail = 0) { return {StatusCode::kIntegrity, std::move(msg), detail}; }
  static Status Cancelled(std::string msg, long detail = 0) { return {StatusCode::kCancelled, std::move(msg), detail}; }
  static Status Locked(std::string msg, long detail = 0) { return {StatusCode::kLocked, std::move(msg), detail}; }
  static Status Unauthorized(std::string msg, long detail = 0) { return {StatusCode::kUnauthorized, std::move(msg), detail}; }
  static Status Offline(std::string msg, long detail = 0) { return {StatusCode::kOffline, std::move(msg), detail}; }
  static Status Version(std::string msg, long detail = 0) { return {StatusCode::kVersion, std::move(msg), detail}; }

  // From an errno value: ENOSPC/EDQUOT become kNoSpace, ENOENT kNotFound, else kIOError.
  // The message reads "<what>: <strerror>".
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  long detail() const { return detail_; }

  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }
  bool IsNoSpace() const { return code_ == StatusCode::kNoSpace; }
  bool IsTransient() const { return code_ == StatusCode::kTransient; }
  bool IsIntegrity() const { return code_ == StatusCode::kIntegrity; }
  bool IsCancelled() const { return code_ == StatusCode::kCancelled; }
  bool IsLocked() const { return code_ == StatusCode::kLocked; }
  bool IsOffline() const { return code_ == StatusCode::kOffline; }

  // "<CodeName>: <message>", or "OK".
  std::string ToString() const;

  // A copy whose message is prefixed with "<context>: " (advice kept).
  Status With(std::string_view context) const;
  // A copy whose message ends with " (<note>)" (code, detail and advice kept).
  Status WithNote(std::string_view note) const;

  // Whether the message already says what the user should do (FromErrno's "free some space,
  // then run the command again", the log's "retry"): callers that add advice skip these, and
  // decide so on this flag, never on the message's text.
  bool has_advice() const { return has_advice_; }
  Status Advised() const {
    Status s = *this;
    s.has_advice_ = true;
    return s;
  }

 private:
  Status(StatusCode code, std::string msg, long detail)
      : code_(code), message_(std::move(msg)), detail_(detail) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  long detail_ = 0;
  bool has_advice_ = false;
};

// Result<T>: a T, or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace modelsync

// Early return on a non-OK Status / Result.
#define MS_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::modelsync::Status ms_s_ = (expr);      \
    if (!ms_s_.ok()) return ms_s_;           \
  } while (0)

#define MS_CONCAT_INNER_(a, b) a##b
#define MS_CONCAT_(a, b) MS_CONCAT_INNER_(a, b)
#define MS_ASSIGN_OR_RETURN(lhs, expr) MS_ASSIGN_OR_RETURN_IMPL_(MS_CONCAT_(ms_r_, __LINE__), lhs, expr)
#define MS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
