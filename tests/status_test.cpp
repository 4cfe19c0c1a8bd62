// Statuses (SPEC §1): stable numbering, protocol names, what each status does, HTTP mapping.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <durable/status.hpp>

namespace {

using durable::status;

/// One row of the SPEC §1 table.
struct row {
  status code;
  std::uint8_t value;
  std::string_view name;
  bool retryable;  // "retry later" and incompatible_state
  bool terminal;   // ok and "fatal, never retried"
};

constexpr std::array<row, 15> spec_table{{
    {status::ok, 1, "OK", false, true},
    {status::timeout, 2, "TIMEOUT", true, false},
    {status::throttled, 3, "THROTTLED", true, false},
    {status::invalid_argument, 4, "INVALID_ARGUMENT", false, true},
    {status::invalid_response, 5, "INVALID_RESPONSE", false, true},
    {status::temporary_error, 6, "TEMPORARY_ERROR", true, false},
    {status::permanent_error, 7, "PERMANENT_ERROR", false, true},
    {status::incompatible_state, 8, "INCOMPATIBLE_STATE", true, false},
    {status::dns_error, 9, "DNS_ERROR", true, false},
    {status::tcp_error, 10, "TCP_ERROR", true, false},
    {status::tls_error, 11, "TLS_ERROR", true, false},
    {status::http_error, 12, "HTTP_ERROR", true, false},
    {status::unauthenticated, 13, "UNAUTHENTICATED", false, true},
    {status::permission_denied, 14, "PERMISSION_DENIED", false, true},
    {status::not_found, 15, "NOT_FOUND", false, true},
}};

constexpr bool whole_table_holds_at_compile_time() {
  for (const row& r : spec_table) {
    if (static_cast<std::uint8_t>(r.code) != r.value) return false;
    if (durable::to_string(r.code) != r.name) return false;
    if (durable::parse_status(r.name) != r.code) return false;
    if (durable::is_retryable(r.code) != r.retryable) return false;
    if (durable::is_terminal(r.code) != r.terminal) return false;
  }
  return true;
}

// The helpers are constexpr: the whole table is checked by the compiler as well.
static_assert(whole_table_holds_at_compile_time());
static_assert(std::is_same_v<std::underlying_type_t<status>, std::uint8_t>);
static_assert(static_cast<int>(status::ok) == 1 && static_cast<int>(status::not_found) == 15);
static_assert(durable::to_string(status::temporary_error) == "TEMPORARY_ERROR");
static_assert(durable::parse_status("PERMANENT_ERROR") == status::permanent_error);
static_assert(!durable::parse_status("permanent_error").has_value());
static_assert(durable::is_retryable(status::incompatible_state));
static_assert(!durable::is_retryable(status::permanent_error));
static_assert(durable::is_terminal(status::ok) && !durable::is_retryable(status::ok));
static_assert(durable::status_for_http(200) == status::ok);
static_assert(durable::status_for_http(429) == status::throttled);
static_assert(durable::status_for_http(501) == status::permanent_error);
static_assert(noexcept(durable::to_string(status::ok)));
static_assert(noexcept(durable::parse_status("OK")));
static_assert(noexcept(durable::is_retryable(status::ok)));
static_assert(noexcept(durable::is_terminal(status::ok)));
static_assert(noexcept(durable::status_for_http(200)));

std::string printed(status s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

}  // namespace

TEST_CASE("every status has the numeric value of Dispatch's protocol", "[status]") {
  for (const row& r : spec_table) {
    INFO(r.name);
    CHECK(static_cast<int>(r.code) == r.value);
  }
}

TEST_CASE("to_string gives each status its protocol name", "[status]") {
  for (const row& r : spec_table) {
    INFO(static_cast<int>(r.value));
    CHECK(durable::to_string(r.code) == r.name);
  }
}

TEST_CASE("parse_status reads back every name that to_string writes", "[status]") {
  for (const row& r : spec_table) {
    INFO(r.name);
    const std::optional<status> parsed = durable::parse_status(durable::to_string(r.code));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == r.code);
  }
}

TEST_CASE("parse_status rejects unknown, lowercase and padded names", "[status]") {
  CHECK_FALSE(durable::parse_status("").has_value());
  CHECK_FALSE(durable::parse_status("UNKNOWN").has_value());
  CHECK_FALSE(durable::parse_status("RETRY").has_value());
  CHECK_FALSE(durable::parse_status("ok").has_value());
  CHECK_FALSE(durable::parse_status("temporary_error").has_value());
  CHECK_FALSE(durable::parse_status("Not_Found").has_value());
  CHECK_FALSE(durable::parse_status(" OK").has_value());
  CHECK_FALSE(durable::parse_status("OK ").has_value());
  CHECK_FALSE(durable::parse_status("TIMEOUTS").has_value());
}

TEST_CASE("the retry-later statuses and incompatible_state are retryable, nothing else is",
          "[status]") {
  for (const row& r : spec_table) {
    INFO(r.name);
    CHECK(durable::is_retryable(r.code) == r.retryable);
  }
  CHECK(durable::is_retryable(status::timeout));
  CHECK(durable::is_retryable(status::throttled));
  CHECK(durable::is_retryable(status::temporary_error));
  CHECK(durable::is_retryable(status::incompatible_state));
  CHECK(durable::is_retryable(status::dns_error));
  CHECK(durable::is_retryable(status::tcp_error));
  CHECK(durable::is_retryable(status::tls_error));
  CHECK(durable::is_retryable(status::http_error));
}

TEST_CASE("ok and the fatal statuses are terminal, and permanent_error is never retried",
          "[status]") {
  for (const row& r : spec_table) {
    INFO(r.name);
    CHECK(durable::is_terminal(r.code) == r.terminal);
  }
  // The upstream documentation says "retry later" for PERMANENT_ERROR; the spec corrects it.
  CHECK(durable::is_terminal(status::permanent_error));
  CHECK_FALSE(durable::is_retryable(status::permanent_error));
}

TEST_CASE("every status is exactly one of retryable and terminal", "[status]") {
  for (const row& r : spec_table) {
    INFO(r.name);
    CHECK(durable::is_retryable(r.code) != durable::is_terminal(r.code));
  }
}

TEST_CASE("operator<< prints a status by its protocol name", "[status]") {
  for (const row& r : spec_table) {
    CHECK(printed(r.code) == std::string(r.name));
  }
  std::ostringstream line;
  line << "attempt failed with " << status::throttled << '.';
  CHECK(line.str() == "attempt failed with THROTTLED.");
}

TEST_CASE("status_for_http maps every 2xx code to ok", "[status][http]") {
  CHECK(durable::status_for_http(200) == status::ok);
  CHECK(durable::status_for_http(201) == status::ok);
  CHECK(durable::status_for_http(204) == status::ok);
  CHECK(durable::status_for_http(299) == status::ok);
}

TEST_CASE("status_for_http maps the client errors the spec names", "[status][http]") {
  CHECK(durable::status_for_http(400) == status::invalid_argument);
  CHECK(durable::status_for_http(401) == status::unauthenticated);
  CHECK(durable::status_for_http(403) == status::permission_denied);
  CHECK(durable::status_for_http(404) == status::not_found);
  CHECK(durable::status_for_http(408) == status::timeout);
  CHECK(durable::status_for_http(429) == status::throttled);
}

TEST_CASE("status_for_http treats 501 as permanent and other 5xx as temporary",
          "[status][http]") {
  CHECK(durable::status_for_http(500) == status::temporary_error);
  CHECK(durable::status_for_http(501) == status::permanent_error);
  CHECK(durable::status_for_http(502) == status::temporary_error);
  CHECK(durable::status_for_http(503) == status::temporary_error);
  CHECK(durable::status_for_http(504) == status::temporary_error);
  CHECK(durable::status_for_http(599) == status::temporary_error);
}

TEST_CASE("status_for_http maps any other code to permanent_error", "[status][http]") {
  CHECK(durable::status_for_http(100) == status::permanent_error);
  CHECK(durable::status_for_http(199) == status::permanent_error);
  CHECK(durable::status_for_http(300) == status::permanent_error);
  CHECK(durable::status_for_http(301) == status::permanent_error);
  CHECK(durable::status_for_http(402) == status::permanent_error);
  CHECK(durable::status_for_http(405) == status::permanent_error);
  CHECK(durable::status_for_http(418) == status::permanent_error);
  CHECK(durable::status_for_http(499) == status::permanent_error);
  CHECK(durable::status_for_http(600) == status::permanent_error);
  CHECK(durable::status_for_http(0) == status::permanent_error);
  CHECK(durable::status_for_http(-200) == status::permanent_error);
}

TEST_CASE("to_string names a value outside the enum UNKNOWN, and it does not parse back",
          "[status]") {
  const auto zero = static_cast<status>(0);
  const auto sixteen = static_cast<status>(16);
  CHECK(durable::to_string(zero) == "UNKNOWN");
  CHECK(durable::to_string(sixteen) == "UNKNOWN");
  CHECK_FALSE(durable::parse_status(durable::to_string(sixteen)).has_value());
  CHECK_FALSE(durable::is_retryable(sixteen));
  CHECK_FALSE(durable::is_terminal(sixteen));
}
