// Status: the one error type of the native code.
//
// Every fallible function in cpp/ returns a Status (or writes one); nothing calls exit() or
// abort(). The addon turns a failed Status into a JS exception whose class follows the code
// (InvalidArgument -> TypeError, OutOfRange -> RangeError, the rest -> Error with `code`).
#pragma once

#include <string>
#include <utility>

namespace npr {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // wrong type, dtype, shape or layout
  kOutOfRange,       // a size or index outside what is allowed
  kOutOfMemory,      // host or device allocation failed
  kUnavailable,      // a backend or library is not present here (CUDA, OpenBLAS, ...)
  kCuda,             // a CUDA runtime call failed
  kInternal,         // a broken invariant: a bug in this project
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status oom(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>", for logs and test failures.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace npr

// Returns early from the enclosing function when `expr` yields a failed Status.
#define NPR_TRY(expr)                                     \
  do {                                                    \
    ::npr::Status npr_try_status_ = (expr);               \
    if (!npr_try_status_.is_ok()) return npr_try_status_; \
  } while (0)
