// Status and Result<T>: the error type of every fallible call in Suanli.
//
// A Status is either OK or carries a code and a message a person can act on ("file:line: key:
// what is wrong"). Both types are [[nodiscard]]: ignoring one is a compile warning; to ignore
// deliberately, call IgnoreError(), which is searchable.
// Thread-safety: plain values; safe to copy between threads.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace suanli {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad input from outside (request, config, file contents)
  kNotFound,           // a file, key or resource that is absent
  kPermissionDenied,   // EACCES and friends
  kResourceExhausted,  // a limit was reached (size, count, disk)
  kUnavailable,        // a peer or device that may come back (retry)
  kDeadlineExceeded,   // a timeout
  kIoError,            // the environment failed (disk, WAL): often fatal for storage
  kInternal,           // an invariant broke
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "prefix: message" (for adding context on the way up).
  Status WithContext(const std::string& prefix) const;

  // Explicit, searchable way to drop a status on purpose.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Internal("Result built from an OK Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  void IgnoreError() const {}

 private:
  std::optional<T> value_;
  Status status_;  // OK exactly when value_ is set
};

}  // namespace suanli

#define SUANLI_CONCAT_INNER(a, b) a##b
#define SUANLI_CONCAT(a, b) SUANLI_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)      \
  do {                             \
    ::suanli::Status _st = (expr); \
    if (!_st.ok()) return _st;     \
  } while (0)

// Declares `lhs` from a Result expression, returning its Status on error.
#define ASSIGN_OR_RETURN(lhs, expr)                                                         \
  auto SUANLI_CONCAT(_res_, __LINE__) = (expr);                                             \
  if (!SUANLI_CONCAT(_res_, __LINE__).ok()) return SUANLI_CONCAT(_res_, __LINE__).status(); \
  lhs = std::move(SUANLI_CONCAT(_res_, __LINE__)).value()
