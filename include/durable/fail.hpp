// durable/fail.hpp — ending an attempt with a status, without throwing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "status.hpp"

namespace durable {

/// What `durable::fail` returns: a request, for `co_yield`, to end the current attempt with a
/// status. Only meaningful as the operand of `co_yield` in a `durable_task`.
struct fail_request {
  status code;
  std::string message;
  std::optional<std::chrono::nanoseconds> retry_after;
};

/// `co_yield durable::fail(status, "why");` ends the current attempt with `code` as if an
/// exception with that status had been thrown, but without the cost of a throw. In a plain
/// task the failure travels to the awaiting caller like an exception. `status::ok` is not a
/// failure: it is reported as an `invalid_argument` failure saying so.
[[nodiscard]] inline fail_request fail(status code, std::string message) {
  return {code, std::move(message), std::nullopt};
}

/// As above, with a retry-after hint that replaces the computed backoff for the next retry.
[[nodiscard]] inline fail_request fail(status code, std::string message,
                                       std::chrono::nanoseconds retry_after) {
  return {code, std::move(message), retry_after};
}

}  // namespace durable
