// durable/fail.hpp — ending an attempt with a status, without throwing.
#pragma once

#include <chrono>
#include <cstddef>
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
  /// The message when it was given as a constant character array (a string literal): not
  /// copied unless the failure is reported, and then while the failed task still exists. Null
  /// when the message is in `owned`.
  std::string_view text;
  /// Any other message.
  std::string owned;
  std::optional<std::chrono::nanoseconds> retry_after;
};

namespace detail {
/// The text of a character array: up to its first NUL, never past its end.
template <std::size_t N>
constexpr std::string_view array_text(const char (&chars)[N]) noexcept {
  const char* end = std::char_traits<char>::find(chars, N, '\0');
  return std::string_view(chars, end != nullptr ? static_cast<std::size_t>(end - chars) : N);
}
}  // namespace detail

/// `co_yield durable::fail(status, "why");` ends the current attempt with `code` as if an
/// exception with that status had been thrown, but without the cost of a throw. In a plain
/// task the failure travels to the awaiting caller like an exception. `status::ok` is not a
/// failure: it is reported as an `invalid_argument` failure saying so.
[[nodiscard]] inline fail_request fail(status code, std::string message) {
  return {code, {}, std::move(message), std::nullopt};
}
/// As above, for a string literal (or any `const char` array): its characters cannot change and
/// outlive the task, so they are only copied if the failure is reported. A call that retries
/// never builds a `std::string` for it.
template <std::size_t N>
[[nodiscard]] fail_request fail(status code, const char (&message)[N]) {
  return {code, detail::array_text(message), {}, std::nullopt};
}
/// As above, for a character array that may change: copied at once.
template <std::size_t N>
[[nodiscard]] fail_request fail(status code, char (&message)[N]) {
  return {code, {}, std::string(detail::array_text(message)), std::nullopt};
}

/// As above, with a retry-after hint that replaces the computed backoff for the next retry.
[[nodiscard]] inline fail_request fail(status code, std::string message, std::chrono::nanoseconds retry_after) {
  return {code, {}, std::move(message), retry_after};
}
/// As above.
template <std::size_t N>
[[nodiscard]] fail_request fail(status code, const char (&message)[N], std::chrono::nanoseconds retry_after) {
  return {code, detail::array_text(message), {}, retry_after};
}
/// As above.
template <std::size_t N>
[[nodiscard]] fail_request fail(status code, char (&message)[N], std::chrono::nanoseconds retry_after) {
  return {code, {}, std::string(detail::array_text(message)), retry_after};
}

}  // namespace durable
