// durable/status.hpp — the outcome of an attempt, and what each outcome means for retries.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string_view>

namespace durable {

/// The outcome of one attempt of a durable function. The numeric values are stable: they are
/// written to journals and follow Dispatch's protocol numbering, so never renumber them.
enum class status : std::uint8_t {
  ok = 1,                  ///< done: the caller resumes with the value
  timeout = 2,             ///< retry later
  throttled = 3,           ///< retry later, honouring a retry-after hint
  invalid_argument = 4,    ///< fatal, never retried
  invalid_response = 5,    ///< fatal, never retried
  temporary_error = 6,     ///< retry later
  permanent_error = 7,     ///< fatal, never retried
  incompatible_state = 8,  ///< restart from scratch with the original input
  dns_error = 9,           ///< retry later
  tcp_error = 10,          ///< retry later
  tls_error = 11,          ///< retry later
  http_error = 12,         ///< retry later
  unauthenticated = 13,    ///< fatal, never retried
  permission_denied = 14,  ///< fatal, never retried
  not_found = 15,          ///< fatal, never retried
};

/// The protocol name of a status ("TEMPORARY_ERROR"); "UNKNOWN" for a value outside the enum.
[[nodiscard]] constexpr std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::ok: return "OK";
    case status::timeout: return "TIMEOUT";
    case status::throttled: return "THROTTLED";
    case status::invalid_argument: return "INVALID_ARGUMENT";
    case status::invalid_response: return "INVALID_RESPONSE";
    case status::temporary_error: return "TEMPORARY_ERROR";
    case status::permanent_error: return "PERMANENT_ERROR";
    case status::incompatible_state: return "INCOMPATIBLE_STATE";
    case status::dns_error: return "DNS_ERROR";
    case status::tcp_error: return "TCP_ERROR";
    case status::tls_error: return "TLS_ERROR";
    case status::http_error: return "HTTP_ERROR";
    case status::unauthenticated: return "UNAUTHENTICATED";
    case status::permission_denied: return "PERMISSION_DENIED";
    case status::not_found: return "NOT_FOUND";
  }
  return "UNKNOWN";
}

/// The status whose protocol name is exactly `name` (case-sensitive), or nothing.
[[nodiscard]] constexpr std::optional<status> parse_status(std::string_view name) noexcept {
  for (std::uint8_t v = 1; v <= 15; ++v) {
    if (to_string(static_cast<status>(v)) == name) return static_cast<status>(v);
  }
  return std::nullopt;
}

/// True when a failure with this status is worth another attempt later: the "retry later"
/// statuses and `incompatible_state` (which restarts from scratch).
[[nodiscard]] constexpr bool is_retryable(status s) noexcept {
  switch (s) {
    case status::timeout:
    case status::throttled:
    case status::temporary_error:
    case status::incompatible_state:
    case status::dns_error:
    case status::tcp_error:
    case status::tls_error:
    case status::http_error:
      return true;
    default:
      return false;
  }
}

/// True when this status ends a call for good: `ok` and the fatal statuses.
[[nodiscard]] constexpr bool is_terminal(status s) noexcept {
  switch (s) {
    case status::ok:
    case status::invalid_argument:
    case status::invalid_response:
    case status::permanent_error:
    case status::unauthenticated:
    case status::permission_denied:
    case status::not_found:
      return true;
    default:
      return false;
  }
}

/// The status an HTTP response code stands for (SPEC §1): 2xx ok, 400 invalid_argument,
/// 401 unauthenticated, 403 permission_denied, 404 not_found, 408 timeout, 429 throttled,
/// 501 permanent_error, other 5xx temporary_error, anything else permanent_error.
[[nodiscard]] constexpr status status_for_http(int code) noexcept {
  if (code >= 200 && code <= 299) return status::ok;
  switch (code) {
    case 400: return status::invalid_argument;
    case 401: return status::unauthenticated;
    case 403: return status::permission_denied;
    case 404: return status::not_found;
    case 408: return status::timeout;
    case 429: return status::throttled;
    case 501: return status::permanent_error;
    default: break;
  }
  if (code >= 500 && code <= 599) return status::temporary_error;
  return status::permanent_error;
}

/// Prints the protocol name, so statuses read well in logs and test failures.
inline std::ostream& operator<<(std::ostream& out, status s) { return out << to_string(s); }

}  // namespace durable
