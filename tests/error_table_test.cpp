// The compile-time error table (SPEC §2, §4): most specific entry wins, durable::error wins
// over the table, the policy's table and standard_errors act as one table, the fallback, and
// classification happening once, by the policy of the task whose body threw.
//
// Every case is classified three ways that must agree: the fast path (`detail::classify`,
// which on libstdc++ reads the thrown type without rethrowing), the portable rethrow-based path
// (`detail::classify_portable`, what other standard libraries use), and a real task that
// throws, run on a runtime (what users see, through `durable::failure::code()`).
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <future>
#include <ios>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <durable/durable.hpp>

using namespace std::chrono_literals;
using durable::status;

namespace {

// ---- exception types of an imaginary application ------------------------------------------

struct MaintenanceException : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct UserDeactivated : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NetworkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ConnectionDropped : NetworkError {
  using NetworkError::NetworkError;
};
struct ConnectionDroppedDuringTls : ConnectionDropped {  // not listed anywhere
  using ConnectionDropped::ConnectionDropped;
};

/// A database error decided per object, by its vendor error code.
struct DbError : std::runtime_error {
  DbError(const std::string& what, int vendor_code) : std::runtime_error(what), code(vendor_code) {}
  int code;
};
struct DbConnectionError : DbError {  // not listed: still decided by classify_db
  using DbError::DbError;
};
constexpr int db_deadlock = 1213;
constexpr int db_access_denied = 1045;
constexpr int db_unknown_table = 1051;

durable::status classify_db(const DbError& e) noexcept {
  switch (e.code) {
    case db_deadlock: return status::temporary_error;
    case db_access_denied: return status::permission_denied;
    default: return status::permanent_error;
  }
}

/// Two unrelated types, and a type that is both.
struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct RetryableMarker {};  // a tag base, not an exception type at all
struct QuotaExceededForNow : QuotaExceeded, RetryableMarker {
  using QuotaExceeded::QuotaExceeded;
};

/// Derives from a standard exception and from a tag the application lists.
struct InputOutOfRange : std::out_of_range, RetryableMarker {
  using std::out_of_range::out_of_range;
};

/// A user type that carries its own status, like durable::error.
struct RateLimited : durable::error {
  RateLimited() : durable::error(status::throttled, "rate limited", 5s) {}
};

struct NotAnException {};                    // a class type no table knows
struct UnlistedException : std::exception {  // a std::exception no table knows
  const char* what() const noexcept override { return "unlisted"; }
};
struct CustomLogicError : std::logic_error {
  using std::logic_error::logic_error;
};
struct CustomInvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// An error category that is neither generic nor system.
class vendor_category_t final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vendor"; }
  std::string message(int value) const override { return "vendor error " + std::to_string(value); }
};
const std::error_category& vendor_category() {
  static const vendor_category_t category;
  return category;
}

/// A category of its own numbering (as Asio's "asio.system" or a driver's) that says which
/// generic condition each code stands for, through default_error_condition.
class mapped_category_t final : public std::error_category {
 public:
  static constexpr int refused = 1, timed_out = 2, unmapped = 3;
  const char* name() const noexcept override { return "mapped"; }
  std::string message(int value) const override { return "mapped error " + std::to_string(value); }
  std::error_condition default_error_condition(int value) const noexcept override {
    if (value == refused) return std::errc::connection_refused;
    if (value == timed_out) return std::errc::timed_out;
    return {value, *this};
  }
};
const std::error_category& mapped_category() {
  static const mapped_category_t category;
  return category;
}

/// A category that answers only `equivalent` (its default condition stays its own).
class equivalent_only_category_t final : public std::error_category {
 public:
  const char* name() const noexcept override { return "equivalent_only"; }
  std::string message(int value) const override { return "equivalent_only error " + std::to_string(value); }
  bool equivalent(int value, const std::error_condition& condition) const noexcept override {
    return value == 7 && condition == std::errc::network_unreachable;
  }
};
const std::error_category& equivalent_only_category() {
  static const equivalent_only_category_t category;
  return category;
}

// ---- policies -----------------------------------------------------------------------------

using base_then_derived = durable::policy<durable::error_table<
    durable::on<NetworkError, status::permanent_error>,
    durable::on<ConnectionDropped, status::tcp_error>>>;
using derived_then_base = durable::policy<durable::error_table<
    durable::on<ConnectionDropped, status::tcp_error>,
    durable::on<NetworkError, status::permanent_error>>>;

using quota_first = durable::policy<durable::error_table<
    durable::on<QuotaExceeded, status::permanent_error>,
    durable::on<RetryableMarker, status::throttled>>>;
using marker_first = durable::policy<durable::error_table<
    durable::on<RetryableMarker, status::throttled>,
    durable::on<QuotaExceeded, status::permanent_error>>>;

using app_errors = durable::error_table<
    durable::on<MaintenanceException, status::temporary_error>,
    durable::on<UserDeactivated, status::permanent_error>,
    durable::on<DbError, classify_db>>;
using app_policy = durable::policy<app_errors>;

using lambda_policy = durable::policy<durable::error_table<durable::on<
    DbError, [](const DbError& e) noexcept {
      return e.code == db_deadlock ? status::temporary_error : status::invalid_response;
    }>>>;

using runtime_error_is_permanent =
    durable::policy<durable::error_table<durable::on<std::runtime_error, status::permanent_error>>>;
using runtime_error_is_dns =
    durable::policy<durable::error_table<durable::on<std::runtime_error, status::dns_error>>>;
using system_error_is_throttled =
    durable::policy<durable::error_table<durable::on<std::system_error, status::throttled>>>;
using logic_error_is_temporary =
    durable::policy<durable::error_table<durable::on<std::logic_error, status::temporary_error>>>;
using marker_is_tls = durable::policy<durable::error_table<durable::on<RetryableMarker, status::tls_error>>>;
using rate_limited_listed =
    durable::policy<durable::error_table<durable::on<RateLimited, status::permanent_error>,
                                         durable::on<durable::error, status::permanent_error>>>;

using temporary_fallback = durable::policy<durable::fallback<status::temporary_error>>;

// ---- helpers ------------------------------------------------------------------------------

/// An exception_ptr to an object that was really thrown (so its dynamic type is E).
template <class E>
std::exception_ptr thrown(E e) {
  try {
    throw e;
  } catch (...) {
    return std::current_exception();
  }
}

template <class Policy>
durable::detail::classification fast_path(const std::exception_ptr& e) {
  return durable::detail::classify<Policy>(e);
}

template <class Policy>
durable::detail::classification portable_path(const std::exception_ptr& e) {
  return durable::detail::classify_portable<durable::detail::merged_entries<Policy>,
                                            Policy::fallback_status>(e);
}

/// A task of policy `Policy` whose body throws `e`.
template <class Policy, class E>
durable::durable_task<void, Policy> throwing_task(E e) {
  throw e;
  co_return;
}

template <class Policy, class E>
status status_of_task_throwing(E e) {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 1}};
  try {
    rt.run(throwing_task<Policy>(std::move(e)));
  } catch (const durable::failure& f) {
    CHECK(f.attempts() == 1);
    CHECK(f.function_name().empty());
    return f.code();
  }
  FAIL("the task did not fail");
  return status::ok;
}

/// The status policy `Policy` gives a thrown `E`, after checking that the fast path (on the
/// thrown object and on a make_exception_ptr one), the portable path and a real task agree.
template <class Policy, class E>
status classified_as(const E& e) {
  const std::exception_ptr real = thrown(e);
  const status fast = fast_path<Policy>(real).code;
  CHECK(fast_path<Policy>(std::make_exception_ptr(e)).code == fast);
  CHECK(portable_path<Policy>(real).code == fast);
  CHECK(status_of_task_throwing<Policy>(e) == fast);
  return fast;
}

std::system_error system_error_of(std::errc code, const std::error_category& category) {
  return std::system_error(std::error_code(static_cast<int>(code), category), "syscall failed");
}

}  // namespace

// ---- most specific wins --------------------------------------------------------------------

TEST_CASE("a derived entry listed after its base still wins for the derived type",
          "[error_table]") {
  CHECK(classified_as<base_then_derived>(ConnectionDropped("reset by peer")) == status::tcp_error);
  CHECK(classified_as<base_then_derived>(NetworkError("no route")) == status::permanent_error);
}

TEST_CASE("a derived entry listed before its base wins for the derived type", "[error_table]") {
  CHECK(classified_as<derived_then_base>(ConnectionDropped("reset by peer")) == status::tcp_error);
  CHECK(classified_as<derived_then_base>(NetworkError("no route")) == status::permanent_error);
}

TEST_CASE("an unlisted type takes the entry of its nearest listed base, in either order",
          "[error_table]") {
  CHECK(classified_as<base_then_derived>(ConnectionDroppedDuringTls("handshake")) ==
        status::tcp_error);
  CHECK(classified_as<derived_then_base>(ConnectionDroppedDuringTls("handshake")) ==
        status::tcp_error);
}

TEST_CASE("an exact hit and a base-class hit on the same entry give the same status",
          "[error_table]") {
  const status exact = classified_as<app_policy>(DbError("deadlock", db_deadlock));
  const status through_base = classified_as<app_policy>(DbConnectionError("deadlock", db_deadlock));
  CHECK(exact == status::temporary_error);
  CHECK(through_base == status::temporary_error);
}

TEST_CASE("a type deriving from two unrelated listed types takes the entry listed first",
          "[error_table]") {
  CHECK(classified_as<quota_first>(QuotaExceededForNow("quota")) == status::permanent_error);
}

TEST_CASE("swapping the two unrelated entries makes the other one win", "[error_table]") {
  CHECK(classified_as<marker_first>(QuotaExceededForNow("quota")) == status::throttled);
  // Objects of only one of the two types are unaffected by the order.
  CHECK(classified_as<marker_first>(QuotaExceeded("quota")) == status::permanent_error);
  CHECK(classified_as<quota_first>(RetryableMarker{}) == status::throttled);
}

TEST_CASE("the policy's entries count as listed before the standard ones", "[error_table]") {
  // InputOutOfRange is a std::out_of_range (standard: invalid_argument) and a RetryableMarker
  // (the policy: tls_error); the two are unrelated, so the policy's entry, listed first, wins.
  CHECK(classified_as<marker_is_tls>(InputOutOfRange("index 7")) == status::tls_error);
  // Without the policy's entry the standard mapping applies.
  CHECK(classified_as<durable::default_policy>(InputOutOfRange("index 7")) ==
        status::invalid_argument);
}

TEST_CASE("an exception thrown with std::throw_with_nested keeps the entry of its type",
          "[error_table]") {
  std::exception_ptr e;
  try {
    try {
      throw std::runtime_error("socket closed");
    } catch (...) {
      std::throw_with_nested(ConnectionDropped("while reading the reply"));
    }
  } catch (...) {
    e = std::current_exception();
  }
  REQUIRE(e);
  // The thrown object's type is an unnamed library type derived from ConnectionDropped.
  CHECK(fast_path<derived_then_base>(e).code == status::tcp_error);
  CHECK(portable_path<derived_then_base>(e).code == status::tcp_error);
}

// ---- function entries ----------------------------------------------------------------------

TEST_CASE("a function entry decides per exception object", "[error_table]") {
  CHECK(classified_as<app_policy>(DbError("deadlock", db_deadlock)) == status::temporary_error);
  CHECK(classified_as<app_policy>(DbError("access denied", db_access_denied)) ==
        status::permission_denied);
  CHECK(classified_as<app_policy>(DbError("unknown table", db_unknown_table)) ==
        status::permanent_error);
}

TEST_CASE("a function entry is given the object of a derived type that it matched",
          "[error_table]") {
  CHECK(classified_as<app_policy>(DbConnectionError("deadlock", db_deadlock)) ==
        status::temporary_error);
  CHECK(classified_as<app_policy>(DbConnectionError("access denied", db_access_denied)) ==
        status::permission_denied);
}

TEST_CASE("a function entry sees the right subobject under multiple inheritance",
          "[error_table]") {
  // The DbError base is not the first base: the object handed to classify_db must be adjusted.
  struct Tagged {
    int padding[7] = {1, 2, 3, 4, 5, 6, 7};
    virtual ~Tagged() = default;
  };
  struct TaggedDbError : Tagged, DbError {
    TaggedDbError(const std::string& what, int vendor_code) : DbError(what, vendor_code) {}
  };
  CHECK(classified_as<app_policy>(TaggedDbError("deadlock", db_deadlock)) ==
        status::temporary_error);
  CHECK(classified_as<app_policy>(TaggedDbError("access denied", db_access_denied)) ==
        status::permission_denied);
}

TEST_CASE("a capture-less lambda works as a function entry", "[error_table]") {
  CHECK(classified_as<lambda_policy>(DbError("deadlock", db_deadlock)) == status::temporary_error);
  CHECK(classified_as<lambda_policy>(DbError("bad row", db_unknown_table)) ==
        status::invalid_response);
}

TEST_CASE("the entries of the spec's app_errors table give their statuses", "[error_table]") {
  CHECK(classified_as<app_policy>(MaintenanceException("down for maintenance")) ==
        status::temporary_error);
  CHECK(classified_as<app_policy>(UserDeactivated("user 42 deactivated")) ==
        status::permanent_error);
}

namespace {
durable::status db_error_means_ok(const DbError&) noexcept { return status::ok; }
using ok_entry_policy = durable::policy<durable::error_table<durable::on<UserDeactivated, status::ok>,
                                                             durable::on<DbError, db_error_means_ok>>>;
}  // namespace

TEST_CASE("an entry that says an exception means ok is reported as invalid_argument",
          "[error_table]") {
  // An exception cannot mean success: like fail(status::ok) and durable::error(status::ok).
  CHECK(classified_as<ok_entry_policy>(UserDeactivated("user 42 deactivated")) ==
        status::invalid_argument);
  CHECK(classified_as<ok_entry_policy>(DbError("deadlock", db_deadlock)) == status::invalid_argument);
}

// ---- durable::error ------------------------------------------------------------------------

TEST_CASE("a durable::error carries its own status and wins over a table entry for its base",
          "[error_table][error]") {
  // durable::error is a std::runtime_error, which this policy maps to permanent_error.
  CHECK(classified_as<runtime_error_is_permanent>(durable::error(status::throttled, "slow down")) ==
        status::throttled);
  CHECK(classified_as<runtime_error_is_permanent>(std::runtime_error("plain")) ==
        status::permanent_error);
}

TEST_CASE("a durable::error keeps its retry-after hint through classification",
          "[error_table][error]") {
  const durable::error slow_down(status::throttled, "slow down", 30s);
  const std::exception_ptr e = thrown(slow_down);
  const durable::detail::classification fast = fast_path<durable::default_policy>(e);
  const durable::detail::classification portable = portable_path<durable::default_policy>(e);
  CHECK(fast.code == status::throttled);
  REQUIRE(fast.retry_after.has_value());
  CHECK(*fast.retry_after == 30s);
  CHECK(portable.code == status::throttled);
  REQUIRE(portable.retry_after.has_value());
  CHECK(*portable.retry_after == 30s);
}

TEST_CASE("a user type deriving from durable::error is classified by the status it carries",
          "[error_table][error]") {
  CHECK(classified_as<durable::default_policy>(RateLimited{}) == status::throttled);
  CHECK(classified_as<runtime_error_is_permanent>(RateLimited{}) == status::throttled);
  const durable::detail::classification c = fast_path<durable::default_policy>(thrown(RateLimited{}));
  REQUIRE(c.retry_after.has_value());
  CHECK(*c.retry_after == 5s);
}

TEST_CASE("a table entry naming a durable::error type does not override the status it carries",
          "[error_table][error]") {
  CHECK(classified_as<rate_limited_listed>(RateLimited{}) == status::throttled);
  CHECK(classified_as<rate_limited_listed>(durable::error(status::dns_error, "no such host")) ==
        status::dns_error);
}

TEST_CASE("a thrown durable::error with status ok is reported as invalid_argument",
          "[error_table][error]") {
  CHECK(classified_as<durable::default_policy>(durable::error(status::ok, "all good?")) ==
        status::invalid_argument);
}

// ---- the policy's table merged with standard_errors ----------------------------------------

TEST_CASE("a user entry for std::runtime_error does not swallow the standard system_error mapping",
          "[error_table][standard]") {
  const std::system_error denied = system_error_of(std::errc::permission_denied, std::generic_category());
  CHECK(classified_as<runtime_error_is_dns>(denied) == status::permission_denied);
  CHECK(classified_as<runtime_error_is_dns>(std::runtime_error("other")) == status::dns_error);
  CHECK(classified_as<runtime_error_is_dns>(std::range_error("range")) == status::dns_error);
}

TEST_CASE("a user entry naming std::system_error itself wins over the standard one",
          "[error_table][standard]") {
  const std::system_error timed_out = system_error_of(std::errc::timed_out, std::generic_category());
  CHECK(classified_as<system_error_is_throttled>(timed_out) == status::throttled);
  const std::filesystem::filesystem_error missing(
      "open", "/no/such/file", std::make_error_code(std::errc::no_such_file_or_directory));
  CHECK(classified_as<system_error_is_throttled>(missing) == status::throttled);
}

TEST_CASE("a user entry for std::logic_error leaves the more specific standard entries alone",
          "[error_table][standard]") {
  CHECK(classified_as<logic_error_is_temporary>(std::logic_error("logic")) == status::temporary_error);
  CHECK(classified_as<logic_error_is_temporary>(CustomLogicError("custom")) == status::temporary_error);
  CHECK(classified_as<logic_error_is_temporary>(std::invalid_argument("bad")) ==
        status::invalid_argument);
  CHECK(classified_as<logic_error_is_temporary>(std::out_of_range("oob")) == status::invalid_argument);
}

// ---- standard_errors, one mapping at a time ------------------------------------------------

TEST_CASE("std::invalid_argument, domain_error, out_of_range and length_error are invalid_argument",
          "[error_table][standard]") {
  CHECK(classified_as<durable::default_policy>(std::invalid_argument("x")) == status::invalid_argument);
  CHECK(classified_as<durable::default_policy>(std::domain_error("x")) == status::invalid_argument);
  CHECK(classified_as<durable::default_policy>(std::out_of_range("x")) == status::invalid_argument);
  CHECK(classified_as<durable::default_policy>(std::length_error("x")) == status::invalid_argument);
  CHECK(classified_as<durable::default_policy>(CustomInvalidArgument("x")) == status::invalid_argument);
}

TEST_CASE("any other std::logic_error is permanent_error", "[error_table][standard]") {
  CHECK(classified_as<durable::default_policy>(std::logic_error("x")) == status::permanent_error);
  CHECK(classified_as<durable::default_policy>(CustomLogicError("x")) == status::permanent_error);
  CHECK(classified_as<durable::default_policy>(
            std::future_error(std::future_errc::no_state)) == status::permanent_error);
}

TEST_CASE("a real std::out_of_range from the standard library is invalid_argument",
          "[error_table][standard]") {
  std::exception_ptr e;
  try {
    const std::string s = "abc";
    static_cast<void>(s.at(10));
  } catch (...) {
    e = std::current_exception();
  }
  REQUIRE(e);
  CHECK(fast_path<durable::default_policy>(e).code == status::invalid_argument);
  CHECK(portable_path<durable::default_policy>(e).code == status::invalid_argument);
}

namespace {
struct errc_row {
  std::errc code;
  status expected;
};
constexpr errc_row listed_errcs[] = {
    {std::errc::timed_out, status::timeout},
    {std::errc::connection_refused, status::tcp_error},
    {std::errc::connection_reset, status::tcp_error},
    {std::errc::connection_aborted, status::tcp_error},
    {std::errc::not_connected, status::tcp_error},
    {std::errc::broken_pipe, status::tcp_error},
    {std::errc::network_down, status::tcp_error},
    {std::errc::network_reset, status::tcp_error},
    {std::errc::network_unreachable, status::tcp_error},
    {std::errc::host_unreachable, status::tcp_error},
    {std::errc::permission_denied, status::permission_denied},
    {std::errc::operation_not_permitted, status::permission_denied},
    {std::errc::no_such_file_or_directory, status::not_found},
    {std::errc::invalid_argument, status::invalid_argument},
};
}  // namespace

TEST_CASE("std::system_error of the generic category maps every listed errc",
          "[error_table][standard][system_error]") {
  for (const errc_row& row : listed_errcs) {
    const std::system_error e = system_error_of(row.code, std::generic_category());
    INFO(e.code().message());
    CHECK(classified_as<durable::default_policy>(e) == row.expected);
  }
}

TEST_CASE("std::system_error of the system category maps every listed errc",
          "[error_table][standard][system_error]") {
  for (const errc_row& row : listed_errcs) {
    const std::system_error e = system_error_of(row.code, std::system_category());
    INFO(e.code().message());
    CHECK(classified_as<durable::default_policy>(e) == row.expected);
  }
}

TEST_CASE("std::system_error with an unlisted errc is temporary_error",
          "[error_table][standard][system_error]") {
  for (const std::errc unlisted : {std::errc::resource_unavailable_try_again, std::errc::no_space_on_device,
                                   std::errc::too_many_files_open, std::errc::io_error,
                                   std::errc::address_in_use, std::errc::file_exists}) {
    CHECK(classified_as<durable::default_policy>(system_error_of(unlisted, std::generic_category())) ==
          status::temporary_error);
    CHECK(classified_as<durable::default_policy>(system_error_of(unlisted, std::system_category())) ==
          status::temporary_error);
  }
}

TEST_CASE("std::system_error of a category that maps nothing to generic conditions is temporary_error",
          "[error_table][standard][system_error]") {
  // Same numeric values as timed_out, permission_denied and ENOENT, but not generic or system.
  CHECK(classified_as<durable::default_policy>(std::system_error(ETIMEDOUT, vendor_category())) ==
        status::temporary_error);
  CHECK(classified_as<durable::default_policy>(std::system_error(EACCES, vendor_category())) ==
        status::temporary_error);
  CHECK(classified_as<durable::default_policy>(std::system_error(ENOENT, vendor_category())) ==
        status::temporary_error);
  const std::system_error future_category(std::make_error_code(std::future_errc::broken_promise));
  CHECK(classified_as<durable::default_policy>(future_category) == status::temporary_error);
}

TEST_CASE("std::system_error of a category that maps its codes to generic conditions is classified by them",
          "[error_table][standard][system_error]") {
  CHECK(classified_as<durable::default_policy>(std::system_error(mapped_category_t::refused, mapped_category())) ==
        status::tcp_error);
  CHECK(classified_as<durable::default_policy>(std::system_error(mapped_category_t::timed_out, mapped_category())) ==
        status::timeout);
  CHECK(classified_as<durable::default_policy>(std::system_error(mapped_category_t::unmapped, mapped_category())) ==
        status::temporary_error);
}

TEST_CASE("std::system_error of a category that is only equivalent to a generic condition is classified by it",
          "[error_table][standard][system_error]") {
  CHECK(classified_as<durable::default_policy>(std::system_error(7, equivalent_only_category())) ==
        status::tcp_error);
  CHECK(classified_as<durable::default_policy>(std::system_error(8, equivalent_only_category())) ==
        status::temporary_error);
}

TEST_CASE("std::filesystem::filesystem_error is classified by its error code",
          "[error_table][standard][system_error]") {
  const std::filesystem::filesystem_error missing(
      "open", "/no/such/file", std::make_error_code(std::errc::no_such_file_or_directory));
  const std::filesystem::filesystem_error denied(
      "open", "/root/secret", std::make_error_code(std::errc::permission_denied));
  const std::filesystem::filesystem_error full(
      "write", "/tmp/x", std::make_error_code(std::errc::no_space_on_device));
  CHECK(classified_as<durable::default_policy>(missing) == status::not_found);
  CHECK(classified_as<durable::default_policy>(denied) == status::permission_denied);
  CHECK(classified_as<durable::default_policy>(full) == status::temporary_error);
}

TEST_CASE("a real filesystem_error for a missing file is not_found", "[error_table][standard]") {
  std::exception_ptr e;
  try {
    static_cast<void>(std::filesystem::file_size("/this/path/does/not/exist/durable-test"));
  } catch (...) {
    e = std::current_exception();
  }
  REQUIRE(e);
  CHECK(fast_path<durable::default_policy>(e).code == status::not_found);
  CHECK(portable_path<durable::default_policy>(e).code == status::not_found);
}

TEST_CASE("std::ios_base::failure is classified by its error code",
          "[error_table][standard][system_error]") {
  static_assert(std::is_base_of_v<std::system_error, std::ios_base::failure>,
                "libstdc++'s new ABI makes ios_base::failure a system_error");
  // The default code is io_errc::stream, of the iostream category: neither generic nor system.
  CHECK(classified_as<durable::default_policy>(std::ios_base::failure("stream broke")) ==
        status::temporary_error);
  CHECK(classified_as<durable::default_policy>(
            std::ios_base::failure("read", std::make_error_code(std::errc::timed_out))) ==
        status::timeout);
  CHECK(classified_as<durable::default_policy>(
            std::ios_base::failure("read", std::make_error_code(std::errc::connection_reset))) ==
        status::tcp_error);
}

TEST_CASE("std::bad_alloc is temporary_error", "[error_table][standard]") {
  CHECK(classified_as<durable::default_policy>(std::bad_alloc{}) == status::temporary_error);
}

TEST_CASE("std::bad_array_new_length is invalid_argument although it is a bad_alloc",
          "[error_table][standard]") {
  CHECK(classified_as<durable::default_policy>(std::bad_array_new_length{}) == status::invalid_argument);
  // (Not from a real `new int[n]`: clang throws a plain bad_alloc for an overflowing length.)
}

// ---- the fallback --------------------------------------------------------------------------

TEST_CASE("an unknown exception type is permanent_error: a bug is not a temporary error",
          "[error_table][fallback]") {
  CHECK(classified_as<durable::default_policy>(NotAnException{}) == status::permanent_error);
  CHECK(classified_as<durable::default_policy>(UnlistedException{}) == status::permanent_error);
  CHECK(classified_as<durable::default_policy>(std::runtime_error("x")) == status::permanent_error);
  CHECK(classified_as<durable::default_policy>(std::overflow_error("x")) == status::permanent_error);
  CHECK(classified_as<app_policy>(NotAnException{}) == status::permanent_error);
}

TEST_CASE("throwing a non-class value such as 42 is permanent_error", "[error_table][fallback]") {
  CHECK(classified_as<durable::default_policy>(42) == status::permanent_error);
  CHECK(classified_as<durable::default_policy>(static_cast<const char*>("a string literal")) == status::permanent_error);
  CHECK(classified_as<app_policy>(3.5) == status::permanent_error);
}

TEST_CASE("a policy's fallback replaces permanent_error for unknown exceptions",
          "[error_table][fallback]") {
  CHECK(classified_as<temporary_fallback>(NotAnException{}) == status::temporary_error);
  CHECK(classified_as<temporary_fallback>(UnlistedException{}) == status::temporary_error);
  CHECK(classified_as<temporary_fallback>(42) == status::temporary_error);
}

TEST_CASE("a policy's fallback leaves the standard mappings alone", "[error_table][fallback]") {
  CHECK(classified_as<temporary_fallback>(std::invalid_argument("x")) == status::invalid_argument);
  CHECK(classified_as<temporary_fallback>(std::logic_error("x")) == status::permanent_error);
  CHECK(classified_as<temporary_fallback>(durable::error(status::not_found, "x")) == status::not_found);
}

TEST_CASE("an empty exception_ptr classifies as the fallback", "[error_table][fallback][detail]") {
  CHECK(portable_path<durable::default_policy>(std::exception_ptr{}).code == status::permanent_error);
  CHECK(fast_path<durable::default_policy>(std::exception_ptr{}).code == status::permanent_error);
  CHECK(fast_path<temporary_fallback>(std::exception_ptr{}).code == status::temporary_error);
}

// ---- classification happens once ----------------------------------------------------------

namespace {
using maintenance_is_temporary = durable::policy<
    durable::error_table<durable::on<MaintenanceException, status::temporary_error>>>;
using maintenance_is_permanent = durable::policy<
    durable::error_table<durable::on<MaintenanceException, status::permanent_error>>>;

template <class Policy>
durable::durable_task<int, Policy> enter_maintenance() {
  throw MaintenanceException("the database is in maintenance");
  co_return 0;
}

durable::durable_task<int, maintenance_is_permanent> parent_mapping_it_permanent() {
  const int v = co_await enter_maintenance<maintenance_is_temporary>();
  co_return v + 1;
}

durable::durable_task<int> parent_mapping_nothing() {
  const int v = co_await enter_maintenance<maintenance_is_temporary>();
  co_return v + 1;
}

durable::durable_task<int, maintenance_is_temporary> parent_of_an_unmapping_child() {
  const int v = co_await enter_maintenance<durable::default_policy>();
  co_return v + 1;
}

durable::durable_task<void, maintenance_is_permanent> grandparent() {
  const int v = co_await parent_mapping_nothing();
  static_cast<void>(v);
}

template <class T, class Policy>
status failure_code_of(durable::durable_task<T, Policy> task) {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 1}};
  try {
    static_cast<void>(rt.run(std::move(task)));
  } catch (const durable::failure& f) {
    CHECK(f.attempts() == 1);
    CHECK(f.function_name().empty());
    return f.code();
  }
  FAIL("the task did not fail");
  return status::ok;
}
}  // namespace

TEST_CASE("a parent whose policy maps the exception differently keeps the child's status",
          "[error_table][once]") {
  CHECK(failure_code_of(parent_mapping_it_permanent()) == status::temporary_error);
}

TEST_CASE("a parent whose policy maps nothing keeps the child's status", "[error_table][once]") {
  CHECK(failure_code_of(parent_mapping_nothing()) == status::temporary_error);
}

TEST_CASE("a parent whose policy would retry does not reclassify the child's permanent failure",
          "[error_table][once]") {
  CHECK(failure_code_of(parent_of_an_unmapping_child()) == status::permanent_error);
}

TEST_CASE("the status stays the one of the task whose body threw across several levels",
          "[error_table][once]") {
  CHECK(failure_code_of(grandparent()) == status::temporary_error);
}

namespace {
durable::durable_task<int, maintenance_is_permanent> parent_that_handles_maintenance(bool& handled,
                                                                                     std::string& what) {
  try {
    const int v = co_await enter_maintenance<maintenance_is_temporary>();
    co_return v;
  } catch (const MaintenanceException& e) {
    handled = true;
    what = e.what();
  }
  co_return -1;
}

durable::durable_task<void, maintenance_is_permanent> parent_that_rethrows() {
  try {
    static_cast<void>(co_await enter_maintenance<maintenance_is_temporary>());
  } catch (const MaintenanceException&) {
    throw;  // the same exception object: the child's classification still holds
  }
}

durable::durable_task<void, maintenance_is_permanent> parent_that_throws_its_own() {
  try {
    static_cast<void>(co_await enter_maintenance<maintenance_is_temporary>());
  } catch (const MaintenanceException& e) {
    throw MaintenanceException(std::string("wrapped: ") + e.what());  // a new exception: its own
  }
}
}  // namespace

TEST_CASE("a parent can catch a child's exception as its original type and handle it",
          "[error_table][once]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 1}};
  bool handled = false;
  std::string what;
  const int v = rt.run(parent_that_handles_maintenance(handled, what));
  CHECK(v == -1);
  CHECK(handled);
  CHECK(what == "the database is in maintenance");
}

TEST_CASE("a parent that rethrows the child's exception keeps the child's status",
          "[error_table][once]") {
  CHECK(failure_code_of(parent_that_rethrows()) == status::temporary_error);
}

TEST_CASE("a new exception thrown by the parent is classified by the parent's policy",
          "[error_table][once]") {
  CHECK(failure_code_of(parent_that_throws_its_own()) == status::permanent_error);
}

TEST_CASE("the root failure carries the exception that ended the task as its cause",
          "[error_table][once]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 1}};
  try {
    rt.run(parent_mapping_it_permanent());
    FAIL("the task did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
    REQUIRE(f.cause());
    CHECK_THROWS_AS(std::rethrow_exception(f.cause()), MaintenanceException);
    CHECK_THAT(f.what(), Catch::Matchers::Contains("the database is in maintenance"));
  }
}

namespace {
int maintenance_attempts = 0;

durable::durable_task<int, maintenance_is_temporary> query_during_maintenance(int attempt) {
  if (attempt < 3) throw MaintenanceException("the database is in maintenance");
  co_return attempt;
}

// The function's own tasks map MaintenanceException to permanent_error; the child that threw
// says temporary_error, and that is what the call acts on.
inline constexpr durable::function report_after_maintenance{
    "report_after_maintenance",
    []() -> durable::durable_task<int, maintenance_is_permanent> {
      ++maintenance_attempts;
      const int rows = co_await query_during_maintenance(maintenance_attempts);
      co_return rows;
    },
    durable::retry_policy{.jitter = durable::jitter::none}};
}  // namespace

TEST_CASE("a durable function retries on the status the throwing child's policy gave",
          "[error_table][once][function]") {
  maintenance_attempts = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 1}};
  const int rows = rt.run(report_after_maintenance());
  CHECK(rows == 3);
  CHECK(maintenance_attempts == 3);
}

TEST_CASE("classify_error_code classifies an error code as the standard system_error entry does",
          "[error_table][standard][system_error]") {
  CHECK(durable::classify_error_code(std::make_error_code(std::errc::connection_refused)) == status::tcp_error);
  CHECK(durable::classify_error_code(std::error_code(mapped_category_t::timed_out, mapped_category())) ==
        status::timeout);
  CHECK(durable::classify_error_code(std::error_code(ETIMEDOUT, vendor_category())) == status::temporary_error);
}
