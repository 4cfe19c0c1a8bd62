// durable/fail.hpp — ending an attempt with a status, without throwing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "status.hpp"

namespace durable {

/// What `durable::fail` returns: a request, for `co_yield`, to end the current attempt with a
/// status. Only meaningful as the operand of `co_yield` in a `durable_task`.
struct fail_request {
  status code;
  /// The message when it was given as characters (a literal, a `string_view`): they are read
  /// only if the failure is reported, while the failed task still exists.
  std::string_view text;
  /// The message when it was given as a `std::string` (then `text` is empty and unused).
  std::string owned;
  std::optional<std::chrono::nanoseconds> retry_after;
  bool is_owned = false;
};

/// `co_yield durable::fail(status, "why");` ends the current attempt with `code` as if an
/// exception with that status had been thrown, but without the cost of a throw. In a plain
/// task the failure travels to the awaiting caller like an exception. `status::ok` is not a
/// failure: it is reported as an `invalid_argument` failure saying so.
[[nodiscard]] inline fail_request fail(status code, std::string message) {
  return {code, {}, std::move(message), std::nullopt, true};
}
/// As above. The characters are not copied unless the failure is reported: they must stay
/// valid while the task that yields the request exists (a literal, or a string in its frame).
[[nodiscard]] inline fail_request fail(status code, std::string_view message) {
  return {code, message, {}, std::nullopt, false};
}
/// As above (a string literal: no std::string is built until the failure keeps the message).
[[nodiscard]] inline fail_request fail(status code, const char* message) {
  return fail(code, std::string_view(message));
}

/// As above, with a retry-after hint that replaces the computed backoff for the next retry.
[[nodiscard]] inline fail_request fail(status code, std::string message,
                                       std::chrono::nanoseconds retry_after) {
  return {code, {}, std::move(message), retry_after, true};
}
/// As above.
[[nodiscard]] inline fail_request fail(status code, std::string_view message,
                                       std::chrono::nanoseconds retry_after) {
  return {code, message, {}, retry_after, false};
}
/// As above.
[[nodiscard]] inline fail_request fail(status code, const char* message, std::chrono::nanoseconds retry_after) {
  return fail(code, std::string_view(message), retry_after);
}

}  // namespace durable
