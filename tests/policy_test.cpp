// durable::policy (SPEC §4): an error_table, an output_table and a fallback, each optional and
// in any order; default_policy is policy<>.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

#include <durable/durable.hpp>

using durable::status;

namespace {

struct MaintenanceException : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct DNSVerification {
  std::string domain;
  bool records_present;
};
durable::status confirm_dns_records_presence(const DNSVerification& v) noexcept {
  return v.records_present ? status::ok : status::temporary_error;
}

using app_errors = durable::error_table<durable::on<MaintenanceException, status::temporary_error>>;
using app_outputs =
    durable::output_table<durable::inspect<DNSVerification, confirm_dns_records_presence>>;
using temporary = durable::fallback<status::temporary_error>;

using errors_outputs = durable::policy<app_errors, app_outputs>;
using outputs_errors = durable::policy<app_outputs, app_errors>;
using outputs_only = durable::policy<app_outputs>;
using errors_only = durable::policy<app_errors>;
using fallback_only = durable::policy<temporary>;
using fallback_first = durable::policy<temporary, app_errors, app_outputs>;
using fallback_middle = durable::policy<app_outputs, temporary, app_errors>;
using fallback_last = durable::policy<app_errors, app_outputs, temporary>;

// ---- the resulting types, checked by the compiler --------------------------------------------

static_assert(std::is_same_v<errors_outputs::errors, app_errors>);
static_assert(std::is_same_v<errors_outputs::outputs, app_outputs>);
static_assert(errors_outputs::fallback_status == status::permanent_error);

static_assert(std::is_same_v<outputs_errors::errors, app_errors>);
static_assert(std::is_same_v<outputs_errors::outputs, app_outputs>);
static_assert(outputs_errors::fallback_status == status::permanent_error);

static_assert(std::is_same_v<outputs_only::errors, durable::error_table<>>);
static_assert(std::is_same_v<outputs_only::outputs, app_outputs>);
static_assert(outputs_only::fallback_status == status::permanent_error);

static_assert(std::is_same_v<errors_only::errors, app_errors>);
static_assert(std::is_same_v<errors_only::outputs, durable::output_table<>>);

static_assert(std::is_same_v<fallback_only::errors, durable::error_table<>>);
static_assert(std::is_same_v<fallback_only::outputs, durable::output_table<>>);
static_assert(fallback_only::fallback_status == status::temporary_error);

static_assert(std::is_same_v<fallback_first::errors, app_errors>);
static_assert(std::is_same_v<fallback_first::outputs, app_outputs>);
static_assert(fallback_first::fallback_status == status::temporary_error);
static_assert(std::is_same_v<fallback_middle::errors, app_errors>);
static_assert(std::is_same_v<fallback_middle::outputs, app_outputs>);
static_assert(fallback_middle::fallback_status == status::temporary_error);
static_assert(std::is_same_v<fallback_last::errors, app_errors>);
static_assert(std::is_same_v<fallback_last::outputs, app_outputs>);
static_assert(fallback_last::fallback_status == status::temporary_error);

static_assert(std::is_same_v<durable::default_policy, durable::policy<>>);
static_assert(std::is_same_v<durable::default_policy::errors, durable::error_table<>>);
static_assert(std::is_same_v<durable::default_policy::outputs, durable::output_table<>>);
static_assert(durable::default_policy::fallback_status == status::permanent_error);
static_assert(durable::fallback<status::not_found>::value == status::not_found);

static_assert(std::is_same_v<durable::durable_task<>, durable::durable_task<void, durable::default_policy>>);
static_assert(std::is_same_v<durable::durable_task<int, errors_outputs>::policy_type, errors_outputs>);
static_assert(std::is_same_v<durable::durable_task<int>::value_type, int>);

// ---- and the behaviour ---------------------------------------------------------------------

template <class T = void, class Policy = durable::default_policy>
using task = durable::durable_task<T, Policy>;

template <class Policy>
task<void, Policy> enter_maintenance() {
  throw MaintenanceException("maintenance");
  co_return;
}

struct Unknown {};
template <class Policy>
task<void, Policy> throw_unknown() {
  throw Unknown{};
  co_return;
}

template <class Policy>
task<DNSVerification, Policy> records_missing() {
  DNSVerification v{"example.com", false};
  co_return v;
}

template <class T, class Policy>
status failure_code(task<T, Policy> t) {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 11}};
  try {
    static_cast<void>(rt.run(std::move(t)));
  } catch (const durable::failure& f) {
    return f.code();
  }
  return status::ok;
}

}  // namespace

TEST_CASE("a policy's parameters work in either order", "[policy]") {
  CHECK(failure_code(enter_maintenance<errors_outputs>()) == status::temporary_error);
  CHECK(failure_code(enter_maintenance<outputs_errors>()) == status::temporary_error);
  CHECK(failure_code(records_missing<errors_outputs>()) == status::temporary_error);
  CHECK(failure_code(records_missing<outputs_errors>()) == status::temporary_error);
}

TEST_CASE("a policy with only an output table inspects outputs and maps only the standard errors",
          "[policy]") {
  CHECK(failure_code(records_missing<outputs_only>()) == status::temporary_error);
  CHECK(failure_code(enter_maintenance<outputs_only>()) == status::permanent_error);
  CHECK(failure_code(enter_maintenance<errors_only>()) == status::temporary_error);
}

TEST_CASE("a policy's fallback applies wherever it is listed", "[policy]") {
  CHECK(failure_code(throw_unknown<fallback_first>()) == status::temporary_error);
  CHECK(failure_code(throw_unknown<fallback_middle>()) == status::temporary_error);
  CHECK(failure_code(throw_unknown<fallback_last>()) == status::temporary_error);
  CHECK(failure_code(throw_unknown<fallback_only>()) == status::temporary_error);
  CHECK(failure_code(throw_unknown<errors_outputs>()) == status::permanent_error);
}

TEST_CASE("the default policy maps standard errors, inspects nothing and treats unknowns as permanent",
          "[policy]") {
  CHECK(failure_code(throw_unknown<durable::default_policy>()) == status::permanent_error);
  CHECK(failure_code(enter_maintenance<durable::default_policy>()) == status::permanent_error);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 11}};
  const DNSVerification v = rt.run(records_missing<durable::default_policy>());
  CHECK(v.domain == "example.com");
  CHECK_FALSE(v.records_present);
}
