// Errors as values. Every fallible operation in ecfs returns Result<T>: a
// value, or an Error that carries the errno a caller (ultimately a FUSE reply
// or a process exit status) must see, plus a message for humans. Messages
// never contain key bytes, plaintext contents or plaintext names.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

namespace ecfs {

class Error {
 public:
  Error(int errno_value, std::string message)
      : errno_value_(errno_value), message_(std::move(message)) {}

  // The errno to report (always positive, e.g. EINVAL).
  int errno_value() const { return errno_value_; }
  const std::string& message() const { return message_; }

  // "message (strerror)" for logs and the command line.
  std::string to_string() const;

 private:
  int errno_value_;
  std::string message_;
};

// std::expected with [[nodiscard]] on the type itself: every call that
// returns a Result must look at it, or say with (void) why it need not.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using Base = std::expected<T, Error>;
  using Base::Base;
  Result(const Base& other) : Base(other) {}
  Result(Base&& other) : Base(std::move(other)) {}
};
using Status = Result<void>;

// Shorthand for `return fail(EINVAL, "...")` from a function returning Result<T>.
inline std::unexpected<Error> fail(int errno_value, std::string message) {
  return std::unexpected<Error>(Error(errno_value, std::move(message)));
}

// The success value of Status.
inline Status ok() { return {}; }

}  // namespace ecfs

// Propagates an error: ECFS_TRY(status_expr); evaluates the expression and
// returns its error from the enclosing function if it failed.
#define ECFS_TRY(expr)                                             \
  do {                                                             \
    if (auto ecfs_try_result_ = (expr); !ecfs_try_result_) {       \
      return std::unexpected(std::move(ecfs_try_result_).error()); \
    }                                                              \
  } while (0)
