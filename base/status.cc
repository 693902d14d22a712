#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace modelsync {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNoSpace: return "NoSpace";
    case StatusCode::kTransient: return "Transient";
    case StatusCode::kPermanent: return "Permanent";
    case StatusCode::kIntegrity: return "Integrity";
    case StatusCode::kCancelled: return "Cancelled";
    case StatusCode::kLocked: return "Locked";
    case StatusCode::kUnauthorized: return "Unauthorized";
    case StatusCode::kOffline: return "Offline";
    case StatusCode::kVersion: return "Version";
  }
  return "Unknown";
}

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) {
    msg += " (free some space, then run the command again: finished work is kept)";
    return NoSpace(std::move(msg), err).Advised();
  }
  if (err == ENOENT) return NotFound(std::move(msg), err);
  return IOError(std::move(msg), err);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::WithNote(std::string_view note) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ += " (" + std::string(note) + ")";
  return s;
}

Status Status::With(std::string_view context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = std::string(context) + ": " + message_;
  return s;
}

int ExitClass(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kCorruption:
    case StatusCode::kIntegrity:
      return 3;
    case StatusCode::kLocked:
      return 4;
    case StatusCode::kVersion:
      return 5;
    case StatusCode::kNoSpace:
      return 6;
    case StatusCode::kOffline:
    case StatusCode::kTransient:
      return 7;
    case StatusCode::kNotFound:
    case StatusCode::kUnauthorized:
      return 8;
    case StatusCode::kInvalidArgument:
      return 2;
    default:
      return 1;
  }
}

}  // namespace modelsync
