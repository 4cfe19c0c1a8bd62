// Retry on success (SPEC §3): a task whose result type has an entry in its policy's output
// table has its value inspected once, when the task that produced it completes.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <durable/durable.hpp>

using namespace std::chrono_literals;
using durable::status;
using Catch::Matchers::Contains;

namespace {

struct DNSVerification {
  std::string domain;
  bool records_present;
  bool domain_exists = true;  // a domain that does not exist will never get records
};

int inspections = 0;  // how often confirm_dns_records_presence ran; reset by each test
int lookups = 0;      // how often the DNS was "queried"; reset by each test
int records_appear_at_lookup = 3;

durable::status confirm_dns_records_presence(const DNSVerification& v) noexcept {
  ++inspections;
  if (!v.domain_exists) return status::not_found;
  return v.records_present ? status::ok : status::temporary_error;
}

using app_outputs = durable::output_table<durable::inspect<DNSVerification, confirm_dns_records_presence>>;
using app_policy = durable::policy<app_outputs>;
template <class T = void>
using task = durable::durable_task<T, app_policy>;

DNSVerification verify(const std::string& domain) {
  ++lookups;
  DNSVerification v;
  v.domain = domain;
  v.records_present = lookups >= records_appear_at_lookup;
  v.domain_exists = domain.find(".invalid") == std::string::npos;
  return v;
}

void reset(int appear_at) {
  inspections = 0;
  lookups = 0;
  records_appear_at_lookup = appear_at;
}

inline constexpr durable::function wait_for_dns_records{
    "wait_for_dns_records",
    [](std::string domain) -> task<DNSVerification> {
      DNSVerification v = verify(domain);
      co_return v;
    },
    durable::retry_policy{.jitter = durable::jitter::none}};

inline constexpr durable::function wait_for_dns_records_twice{
    "wait_for_dns_records_twice",
    [](std::string domain) -> task<DNSVerification> {
      DNSVerification v = verify(domain);
      co_return v;
    },
    durable::retry_policy{.jitter = durable::jitter::none, .max_attempts = 2}};

inline constexpr durable::function connect_domain{
    "connect_domain",
    [](std::string domain) -> task<std::string> {
      DNSVerification v = co_await wait_for_dns_records(domain);  // retried until records show up
      co_return "connected " + v.domain;
    },
    durable::retry_policy{.jitter = durable::jitter::none}};

struct attempt_log {
  int started = 0;
  int failed = 0;
  std::vector<status> failure_codes;
};

void record_attempts(durable::runtime& rt, attempt_log& log, std::string_view name) {
  rt.on_event([&log, name](const durable::event& e) {
    if (e.function_name != name) return;
    if (e.kind == durable::event_kind::attempt_started) ++log.started;
    if (e.kind == durable::event_kind::attempt_failed) {
      ++log.failed;
      log.failure_codes.push_back(e.code);
    }
  });
}

task<DNSVerification> verify_once(std::string domain) {
  DNSVerification v = verify(domain);
  co_return v;
}

}  // namespace

TEST_CASE("an ok verdict passes the value through to the caller", "[output]") {
  reset(1);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  const DNSVerification v = rt.run(verify_once("example.com"));
  CHECK(v.domain == "example.com");
  CHECK(v.records_present);
  CHECK(inspections == 1);
}

TEST_CASE("a retryable verdict on a plain task run directly fails it with that status",
          "[output]") {
  reset(100);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  try {
    static_cast<void>(rt.run(verify_once("example.com")));
    FAIL("the value was returned although the inspection said not yet");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
    CHECK(f.attempts() == 1);
    CHECK(f.cause() == nullptr);
  }
  CHECK(inspections == 1);
}

TEST_CASE("a retryable verdict inside a durable function retries until the value is ok",
          "[output][function]") {
  reset(3);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  attempt_log log;
  record_attempts(rt, log, "wait_for_dns_records");
  const durable::time_point start = clock.now();
  const DNSVerification v = rt.run(wait_for_dns_records("example.com"));
  CHECK(v.domain == "example.com");
  CHECK(v.records_present);
  CHECK(lookups == 3);
  CHECK(log.started == 3);
  CHECK(log.failure_codes == std::vector<status>{status::temporary_error, status::temporary_error});
  CHECK(clock.now() - start == 300ms);  // 100ms + 200ms with the default backoff, no jitter
}

TEST_CASE("a fatal verdict fails the call with that status after one attempt",
          "[output][function]") {
  reset(1);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  attempt_log log;
  record_attempts(rt, log, "wait_for_dns_records");
  try {
    static_cast<void>(rt.run(wait_for_dns_records("nowhere.invalid")));
    FAIL("a value was returned although the inspection said not_found");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::not_found);
    CHECK(f.attempts() == 1);
    CHECK(f.reason() == durable::failure_reason::fatal_status);
    CHECK(f.function_name() == "wait_for_dns_records");
    CHECK(f.cause() == nullptr);
  }
  CHECK(log.started == 1);
  CHECK(lookups == 1);
}

TEST_CASE("running out of attempts while the output still says not yet is a failure, never a value",
          "[output][function]") {
  reset(100);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  bool returned = false;
  try {
    const DNSVerification v = rt.run(wait_for_dns_records_twice("example.com"));
    returned = true;
    CHECK_FALSE(v.records_present);
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
    CHECK(f.attempts() == 2);
    CHECK(f.reason() == durable::failure_reason::attempts_exhausted);
    CHECK(f.cause() == nullptr);
    CHECK(f.function_name() == "wait_for_dns_records_twice");
  }
  CHECK_FALSE(returned);
  CHECK(lookups == 2);
}

TEST_CASE("the value is inspected exactly once per attempt, not again by the call or its caller",
          "[output][function]") {
  reset(3);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  attempt_log inner;
  attempt_log outer;
  record_attempts(rt, inner, "wait_for_dns_records");
  record_attempts(rt, outer, "connect_domain");
  const std::string connected = rt.run(connect_domain("example.com"));
  CHECK(connected == "connected example.com");
  CHECK(inner.started == 3);
  CHECK(outer.started == 1);  // the inner call's retries never fail the caller
  CHECK(inspections == 3);
}

TEST_CASE("the value of a call run directly is inspected once per attempt", "[output][function]") {
  reset(2);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  const DNSVerification v = rt.run(wait_for_dns_records("example.com"));
  CHECK(v.records_present);
  CHECK(lookups == 2);
  CHECK(inspections == 2);
}

namespace {
inline constexpr durable::function connect_via_plain_check{
    "connect_via_plain_check",
    [](std::string domain) -> task<std::string> {
      // verify_once is a plain task: its inspection fails this attempt, and the call retries.
      DNSVerification v = co_await verify_once(domain);
      co_return "connected " + v.domain;
    },
    durable::retry_policy{.jitter = durable::jitter::none, .max_attempts = 4}};
}  // namespace

TEST_CASE("an inspection failing in a plain child makes the enclosing call retry",
          "[output][function]") {
  reset(3);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  attempt_log log;
  record_attempts(rt, log, "connect_via_plain_check");
  const std::string connected = rt.run(connect_via_plain_check("example.com"));
  CHECK(connected == "connected example.com");
  CHECK(log.started == 3);
  CHECK(log.failure_codes == std::vector<status>{status::temporary_error, status::temporary_error});
  CHECK(inspections == 3);
}

TEST_CASE("failure::cause() is null when the last attempt failed in a plain child's inspection",
          "[output][function]") {
  reset(100);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  try {
    static_cast<void>(rt.run(connect_via_plain_check("example.com")));
    FAIL("the call did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
    CHECK(f.attempts() == 4);
    CHECK(f.cause() == nullptr);
  }
  CHECK(inspections == 4);
}

namespace {
DNSVerification cached_verification{"cached.example.com", false};

task<DNSVerification&> cached_check() { co_return cached_verification; }
}  // namespace

TEST_CASE("a task returning a reference to an inspected type is inspected too", "[output]") {
  reset(1);
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  cached_verification.records_present = false;
  try {
    static_cast<void>(rt.run(cached_check()));
    FAIL("the reference was returned although the inspection said not yet");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
  }
  cached_verification.records_present = true;
  DNSVerification& ready = rt.run(cached_check());
  CHECK(&ready == &cached_verification);
  CHECK(inspections == 2);
}

// ---- the status reported is the inspection's own -------------------------------------------

namespace {
/// A poll result that says itself what it means, to drive the inspection precisely.
struct Poll {
  status verdict;
  int value;
};
std::vector<status> poll_script;  // the verdict of each attempt, in order
std::size_t polls = 0;

durable::status poll_verdict(const Poll& p) noexcept { return p.verdict; }

using poll_policy = durable::policy<durable::output_table<durable::inspect<Poll, poll_verdict>>>;

inline constexpr durable::function poll_twice{
    "poll_twice",
    []() -> durable::durable_task<Poll, poll_policy> {
      Poll p{poll_script.at(polls), static_cast<int>(polls)};
      ++polls;
      co_return p;
    },
    durable::retry_policy{.jitter = durable::jitter::none, .max_attempts = 2}};

inline constexpr durable::function poll_until_done{
    "poll_until_done",
    []() -> durable::durable_task<Poll, poll_policy> {
      Poll p{poll_script.at(polls), static_cast<int>(polls)};
      ++polls;
      co_return p;
    },
    durable::retry_policy{.jitter = durable::jitter::none}};

durable::durable_task<int, poll_policy> plain_int_task() { co_return 5; }
}  // namespace

TEST_CASE("when retries run out the failure has the last status the inspection returned",
          "[output][function]") {
  poll_script = {status::dns_error, status::throttled};
  polls = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  try {
    static_cast<void>(rt.run(poll_twice()));
    FAIL("a value was returned although the inspection never said ok");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::throttled);
    CHECK(f.attempts() == 2);
    CHECK(f.cause() == nullptr);
    CHECK_THAT(f.what(), Contains("THROTTLED"));
  }
}

TEST_CASE("the inspection's retryable statuses all retry and the first ok value is returned",
          "[output][function]") {
  poll_script = {status::timeout, status::tcp_error, status::incompatible_state, status::ok,
                 status::not_found};
  polls = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  const Poll p = rt.run(poll_until_done());
  CHECK(p.verdict == status::ok);
  CHECK(p.value == 3);
  CHECK(polls == 4);
}

TEST_CASE("a fatal inspection status after retryable ones ends the call with it",
          "[output][function]") {
  poll_script = {status::temporary_error, status::invalid_response, status::ok};
  polls = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  try {
    static_cast<void>(rt.run(poll_until_done()));
    FAIL("a value was returned although the inspection said invalid_response");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::invalid_response);
    CHECK(f.attempts() == 2);
    CHECK(f.reason() == durable::failure_reason::fatal_status);
  }
  CHECK(polls == 2);
}

TEST_CASE("results of a type without an inspection entry are not inspected", "[output]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 3}};
  CHECK(rt.run(plain_int_task()) == 5);
}

TEST_CASE("an output table finds the entry for a result type and nothing for others", "[output]") {
  using entry = durable::inspect<DNSVerification, confirm_dns_records_presence>;
  STATIC_REQUIRE(std::is_same_v<app_outputs::entry_for<DNSVerification>, entry>);
  STATIC_REQUIRE(std::is_same_v<app_outputs::entry_for<const DNSVerification&>, entry>);
  STATIC_REQUIRE(std::is_void_v<app_outputs::entry_for<int>>);
  STATIC_REQUIRE(std::is_void_v<durable::output_table<>::entry_for<DNSVerification>>);
  reset(1);
  DNSVerification ready{"example.com", true};
  CHECK(entry::check(ready) == status::ok);
  ready.records_present = false;
  CHECK(entry::check(ready) == status::temporary_error);
}
