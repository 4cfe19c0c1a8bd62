// `co_yield durable::fail(status, "message" [, retry_after])` (SPEC §2): ends the attempt with a
// status without throwing; works in durable_task<void> and durable_task<T>; travels up a plain
// task like an exception; status::ok is reported as invalid_argument.
//
// Several tests here are also regression tests for a GCC 12 hazard (CPP_NOTES): a value with a
// non-trivial member (the std::string message) built inside a co_yield expression may be
// destroyed twice. They must pass under -fsanitize=address with g++ and clang.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <durable/durable.hpp>

using namespace std::chrono_literals;
using durable::status;
using Catch::Matchers::Contains;

namespace {

/// Long enough to be on the heap (no small-string optimisation): a double free shows in ASan.
const std::string long_reason =
    "the upstream service answered 503 Service Unavailable while the database was being migrated";

durable::durable_task<void> fail_void(bool& continued) {
  co_yield durable::fail(status::temporary_error, "the database is in maintenance");
  continued = true;
}

durable::durable_task<int> fail_int(bool& continued) {
  co_yield durable::fail(status::temporary_error, "the database is in maintenance");
  continued = true;
  co_return 42;
}

durable::durable_task<std::string> fail_string(bool& continued) {
  co_yield durable::fail(status::not_found, "no such user");
  continued = true;
  co_return std::string("unreachable");
}

/// Counts its own destruction, to see that the locals of a failed body are cleaned up.
struct destruction_counter {
  int* count;
  explicit destruction_counter(int* c) : count(c) {}
  destruction_counter(const destruction_counter&) = delete;
  destruction_counter& operator=(const destruction_counter&) = delete;
  ~destruction_counter() { ++*count; }
};

durable::durable_task<int> fail_with_a_local(int* destroyed) {
  const destruction_counter local(destroyed);
  std::vector<std::string> on_the_heap(3, long_reason);
  co_yield durable::fail(status::permanent_error, "giving up with locals alive");
  co_return static_cast<int>(on_the_heap.size());
}

/// Runs `task` directly on a fresh runtime and returns the failure it must end with.
template <class T, class Policy>
durable::failure failure_of(durable::durable_task<T, Policy> task) {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  try {
    static_cast<void>(rt.run(std::move(task)));
  } catch (const durable::failure& f) {
    return f;
  }
  FAIL("the task did not fail");
  throw;  // unreachable: FAIL throws
}

}  // namespace

TEST_CASE("co_yield fail in a durable_task<void> ends the task with that status",
          "[fail][asan]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_void(continued));
  CHECK(f.code() == status::temporary_error);
  CHECK_FALSE(continued);
}

TEST_CASE("co_yield fail in a durable_task<int> ends the task without a value", "[fail][asan]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_int(continued));
  CHECK(f.code() == status::temporary_error);
  CHECK_FALSE(continued);
}

TEST_CASE("co_yield fail works in a task of a non-trivial value type", "[fail][asan]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_string(continued));
  CHECK(f.code() == status::not_found);
  CHECK_FALSE(continued);
}

TEST_CASE("a plain task that fails run directly reports one attempt and no function name",
          "[fail]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_int(continued));
  CHECK(f.attempts() == 1);
  CHECK(f.function_name().empty());
}

TEST_CASE("failure::cause() is null when the task failed through fail", "[fail]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_void(continued));
  CHECK(f.cause() == nullptr);
}

TEST_CASE("the message given to fail appears in failure::what()", "[fail]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_void(continued));
  CHECK_THAT(f.what(), Contains("the database is in maintenance"));
  CHECK_THAT(f.what(), Contains("TEMPORARY_ERROR"));
}

TEST_CASE("the locals of a body that failed through fail are destroyed with the task",
          "[fail][asan]") {
  int destroyed = 0;
  const durable::failure f = failure_of(fail_with_a_local(&destroyed));
  CHECK(f.code() == status::permanent_error);
  CHECK(destroyed == 1);
}

// ---- the GCC temporary-lifetime shapes users write ----------------------------------------

namespace {
durable::durable_task<void> fail_with_long_literal() {
  co_yield durable::fail(status::temporary_error,
                         "the upstream service answered 503 Service Unavailable while the "
                         "database was being migrated to the new cluster");
}

durable::durable_task<int> fail_with_concatenated_message(std::string domain) {
  co_yield durable::fail(status::dns_error, "no DNS records yet for " + domain + ", will retry");
  co_return 0;
}

durable::durable_task<int> fail_with_string_variable() {
  std::string message = long_reason;
  co_yield durable::fail(status::tcp_error, message);
  co_return 0;
}

durable::durable_task<void> fail_with_moved_string() {
  std::string message = long_reason;
  co_yield durable::fail(status::tcp_error, std::move(message));
}

durable::durable_task<int> fail_with_retry_after_and_long_message() {
  co_yield durable::fail(status::throttled, std::string(200, 'x'), 3s);
  co_return 0;
}

durable::durable_task<int> fail_in_a_branch(bool which) {
  if (which) {
    co_yield durable::fail(status::timeout, "first branch: " + long_reason);
  } else {
    co_yield durable::fail(status::http_error, "second branch: " + long_reason);
  }
  co_return 1;
}
}  // namespace

TEST_CASE("co_yield fail with a long string literal message is safe under ASan",
          "[fail][asan][gcc-regression]") {
  const durable::failure f = failure_of(fail_with_long_literal());
  CHECK(f.code() == status::temporary_error);
  CHECK_THAT(f.what(), Contains("migrated to the new cluster"));
}

TEST_CASE("co_yield fail with a message concatenated in the co_yield expression is safe",
          "[fail][asan][gcc-regression]") {
  const durable::failure f =
      failure_of(fail_with_concatenated_message("a-rather-long-domain-name.example.com"));
  CHECK(f.code() == status::dns_error);
  CHECK_THAT(f.what(),
             Contains("no DNS records yet for a-rather-long-domain-name.example.com, will retry"));
}

TEST_CASE("co_yield fail with a copied or moved string variable is safe",
          "[fail][asan][gcc-regression]") {
  const durable::failure copied = failure_of(fail_with_string_variable());
  CHECK(copied.code() == status::tcp_error);
  CHECK_THAT(copied.what(), Contains(long_reason));
  const durable::failure moved = failure_of(fail_with_moved_string());
  CHECK(moved.code() == status::tcp_error);
  CHECK_THAT(moved.what(), Contains(long_reason));
}

TEST_CASE("co_yield fail with a retry-after and a heap-allocated message is safe",
          "[fail][asan][gcc-regression]") {
  const durable::failure f = failure_of(fail_with_retry_after_and_long_message());
  CHECK(f.code() == status::throttled);
  CHECK_THAT(f.what(), Contains(std::string(200, 'x')));
}

TEST_CASE("co_yield fail in either branch of an if is safe", "[fail][asan][gcc-regression]") {
  CHECK(failure_of(fail_in_a_branch(true)).code() == status::timeout);
  CHECK(failure_of(fail_in_a_branch(false)).code() == status::http_error);
}

// ---- fail in a plain child travels up ------------------------------------------------------

namespace {
durable::durable_task<int> lookup_user(bool& continued) {
  co_yield durable::fail(status::temporary_error, "the user service is restarting");
  continued = true;
  co_return 7;
}

durable::durable_task<std::string> parent_catching_the_error(bool& child_continued,
                                                             bool& parent_continued) {
  std::string outcome;
  try {
    const int id = co_await lookup_user(child_continued);
    parent_continued = true;
    outcome = "user " + std::to_string(id);
  } catch (const durable::error& e) {
    outcome = std::string(durable::to_string(e.code())) + ": " + e.what();
  }
  co_return outcome;
}

durable::durable_task<int> parent_not_catching(bool& child_continued, bool& parent_continued) {
  const int id = co_await lookup_user(child_continued);
  parent_continued = true;
  co_return id;
}

durable::durable_task<void> throttled_child() {
  co_yield durable::fail(status::throttled, "slow down", 30s);
}

durable::durable_task<bool> parent_reading_retry_after(std::chrono::nanoseconds& hint) {
  bool caught = false;
  try {
    co_await throttled_child();
  } catch (const durable::error& e) {
    caught = e.code() == status::throttled;
    if (e.retry_after()) hint = *e.retry_after();
  }
  co_return caught;
}
}  // namespace

TEST_CASE("fail in a plain child reaches the awaiting parent as a catchable durable::error",
          "[fail][asan]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  bool child_continued = false;
  bool parent_continued = false;
  const std::string outcome = rt.run(parent_catching_the_error(child_continued, parent_continued));
  CHECK(outcome == "TEMPORARY_ERROR: the user service is restarting");
  CHECK_FALSE(child_continued);
  CHECK_FALSE(parent_continued);
}

TEST_CASE("fail in a plain child that the parent does not catch fails the parent with its status",
          "[fail][asan]") {
  bool child_continued = false;
  bool parent_continued = false;
  const durable::failure f = failure_of(parent_not_catching(child_continued, parent_continued));
  CHECK(f.code() == status::temporary_error);
  CHECK(f.attempts() == 1);
  CHECK_THAT(f.what(), Contains("the user service is restarting"));
  CHECK_FALSE(child_continued);
  CHECK_FALSE(parent_continued);
}

TEST_CASE("fail with a retry-after hint gives the parent a durable::error carrying the hint",
          "[fail]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  std::chrono::nanoseconds hint{};
  const bool caught = rt.run(parent_reading_retry_after(hint));
  CHECK(caught);
  CHECK(hint == 30s);
}

// ---- fail(status::ok) ----------------------------------------------------------------------

namespace {
durable::durable_task<int> fail_with_ok(bool& continued) {
  co_yield durable::fail(status::ok, "everything is fine, really");
  continued = true;
  co_return 1;
}
}  // namespace

TEST_CASE("fail with status::ok is reported as an invalid_argument failure saying so", "[fail]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_with_ok(continued));
  CHECK(f.code() == status::invalid_argument);
  CHECK_THAT(f.what(), Contains("status::ok"));
  CHECK_FALSE(continued);
}

// ---- fail inside a durable function --------------------------------------------------------

namespace {
int ready_after_attempts = 0;  // reset by each test that uses the functions below
int attempts_made = 0;

inline constexpr durable::function poll_job{
    "poll_job",
    [](std::string job) -> durable::durable_task<std::string> {
      ++attempts_made;
      if (attempts_made < ready_after_attempts) {
        co_yield durable::fail(status::temporary_error, "job " + job + " still running");
      }
      co_return job + " done";
    },
    durable::retry_policy{.initial_delay = 1s, .jitter = durable::jitter::none, .max_attempts = 3}};

inline constexpr durable::function rate_limited_fetch{
    "rate_limited_fetch",
    [](int page) -> durable::durable_task<int> {
      ++attempts_made;
      if (attempts_made == 1) co_yield durable::fail(status::throttled, "slow down", 7s);
      co_return page * 10;
    },
    durable::retry_policy{.initial_delay = 1s, .max_delay = 5s, .jitter = durable::jitter::none}};

inline constexpr durable::function slow_fetch{
    "slow_fetch",
    [](int page) -> durable::durable_task<int> {
      ++attempts_made;
      if (attempts_made == 1) co_yield durable::fail(status::throttled, "slow down", 2s);
      co_return page * 10;
    },
    durable::retry_policy{.initial_delay = 1s, .max_delay = 5s, .jitter = durable::jitter::none}};

inline constexpr durable::function fetch_forbidden{
    "fetch_forbidden",
    [](int page) -> durable::durable_task<int> {
      ++attempts_made;
      co_yield durable::fail(status::permission_denied, "page " + std::to_string(page) + " is private");
      co_return 0;
    }};
}  // namespace

TEST_CASE("fail with a retryable status in a durable function makes the call retry",
          "[fail][function]") {
  attempts_made = 0;
  ready_after_attempts = 3;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  const std::string result = rt.run(poll_job("backup"));
  CHECK(result == "backup done");
  CHECK(attempts_made == 3);
}

TEST_CASE("a durable function that keeps failing through fail reports the status and no cause",
          "[fail][function]") {
  attempts_made = 0;
  ready_after_attempts = 100;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  try {
    static_cast<void>(rt.run(poll_job("backup")));
    FAIL("the call did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
    CHECK(f.attempts() == 3);
    CHECK(f.function_name() == "poll_job");
    CHECK(f.cause() == nullptr);
    CHECK_THAT(f.what(), Contains("job backup still running"));
  }
  CHECK(attempts_made == 3);
}

TEST_CASE("a retry-after hint given to fail replaces the computed delay", "[fail][function]") {
  attempts_made = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  std::vector<std::chrono::nanoseconds> delays;
  rt.on_event([&delays](const durable::event& e) {
    if (e.kind == durable::event_kind::retry_scheduled) delays.push_back(e.delay);
  });
  const durable::time_point start = clock.now();
  const int value = rt.run(slow_fetch(4));
  CHECK(value == 40);
  CHECK(attempts_made == 2);
  REQUIRE(delays.size() == 1);
  CHECK(delays[0] == 2s);  // the hint, not the policy's initial_delay of 1s
  CHECK(clock.now() - start == 2s);
}

TEST_CASE("a retry-after hint given to fail is clamped by max_delay", "[fail][function]") {
  attempts_made = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  std::vector<std::chrono::nanoseconds> delays;
  rt.on_event([&delays](const durable::event& e) {
    if (e.kind == durable::event_kind::retry_scheduled) delays.push_back(e.delay);
  });
  const int value = rt.run(rate_limited_fetch(3));
  CHECK(value == 30);
  REQUIRE(delays.size() == 1);
  CHECK(delays[0] == 5s);  // 7s asked for, max_delay is 5s
}

TEST_CASE("fail with a fatal status in a durable function ends the call after one attempt",
          "[fail][function]") {
  attempts_made = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  try {
    static_cast<void>(rt.run(fetch_forbidden(12)));
    FAIL("the call did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::permission_denied);
    CHECK(f.attempts() == 1);
    CHECK(f.reason() == durable::failure_reason::fatal_status);
    CHECK(f.cause() == nullptr);
    CHECK_THAT(f.what(), Contains("page 12 is private"));
  }
  CHECK(attempts_made == 1);
}

// ---- fail deeper down: a plain child inside a durable function ------------------------------

namespace {
durable::durable_task<int> child_still_running(int attempt) {
  if (attempt < ready_after_attempts) {
    co_yield durable::fail(status::temporary_error, "child still running (" + long_reason + ")");
  }
  co_return attempt;
}

inline constexpr durable::function wait_for_child{
    "wait_for_child",
    []() -> durable::durable_task<int> {
      ++attempts_made;
      const int value = co_await child_still_running(attempts_made);
      co_return value * 100;
    },
    durable::retry_policy{.jitter = durable::jitter::none, .max_attempts = 3}};
}  // namespace

TEST_CASE("fail in a plain child makes the enclosing durable function retry as a whole",
          "[fail][function]") {
  attempts_made = 0;
  ready_after_attempts = 2;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  const int value = rt.run(wait_for_child());
  CHECK(value == 200);
  CHECK(attempts_made == 2);
}

TEST_CASE("failure::cause() is null when the last attempt failed through fail in a plain child",
          "[fail][function]") {
  attempts_made = 0;
  ready_after_attempts = 100;
  durable::manual_clock clock;
  durable::runtime rt{clock, durable::runtime_options{.seed = 7}};
  try {
    static_cast<void>(rt.run(wait_for_child()));
    FAIL("the call did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::temporary_error);
    CHECK(f.attempts() == 3);
    CHECK(f.cause() == nullptr);
    CHECK_THAT(f.what(), Contains("child still running"));
  }
}

TEST_CASE("failure::cause() is null when a plain task failed through fail in its plain child",
          "[fail]") {
  bool child_continued = false;
  bool parent_continued = false;
  const durable::failure f = failure_of(parent_not_catching(child_continued, parent_continued));
  CHECK(f.code() == status::temporary_error);
  CHECK(f.cause() == nullptr);
}

namespace {
int shared_counter = 0;
durable::durable_task<int&> fail_reference(bool& continued) {
  co_yield durable::fail(status::tls_error, "certificate not yet issued");
  continued = true;
  co_return shared_counter;
}
}  // namespace

TEST_CASE("co_yield fail works in a task of a reference type", "[fail][asan]") {
  bool continued = false;
  const durable::failure f = failure_of(fail_reference(continued));
  CHECK(f.code() == status::tls_error);
  CHECK_FALSE(continued);
}

// A message given as a constant character array (a string literal) is borrowed, not copied,
// while the task that failed exists: these tests free that task before the message is read, so
// a dangling view would show as a wrong message (and under ASan as a use after free). An array
// in the task's own frame is the harshest case: it goes with the frame.
namespace {
constexpr const char* frame_text =
    "from the frame: the upstream service answered 503 Service Unavailable while migrating";

durable::durable_task<int> fail_with_array_in_the_frame() {
  const char local[] = "from the frame: the upstream service answered 503 Service Unavailable while migrating";
  co_yield durable::fail(status::temporary_error, local);
  co_return 1;
}

durable::durable_task<int> fail_with_mutable_array(char first) {
  char local[] = "?: a character array that may change is copied at once";
  local[0] = first;
  co_yield durable::fail(status::throttled, local, 5s);
  co_return 1;
}
}  // namespace

TEST_CASE("a fail message borrowed from the task's frame outlives the task", "[fail][asan]") {
  const durable::failure f = failure_of(fail_with_array_in_the_frame());
  CHECK(f.code() == status::temporary_error);
  CHECK_THAT(f.what(), Contains(frame_text));
  const durable::failure g = failure_of(fail_with_mutable_array('!'));
  CHECK(g.code() == status::throttled);
  CHECK_THAT(g.what(), Contains("!: a character array that may change is copied at once"));
}

TEST_CASE("a borrowed fail message reaches a catching parent as the error's message", "[fail][asan]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const std::string seen = rt.run([]() -> durable::durable_task<std::string> {
    try {
      co_await fail_with_array_in_the_frame();
    } catch (const durable::error& e) {
      co_return e.what();
    }
    co_return "not caught";
  }());
  CHECK(seen == frame_text);
}

TEST_CASE("a durable function that gives up reports a borrowed fail message", "[fail][function][asan]") {
  const durable::function f{"borrows", []() { return fail_with_array_in_the_frame(); },
                            {.jitter = durable::jitter::none, .max_attempts = 2}};
  const durable::failure failed = failure_of(f());
  CHECK(failed.attempts() == 2);
  CHECK_THAT(failed.what(), Contains(frame_text));
}

TEST_CASE("an attempt run under a timeout keeps its borrowed fail message", "[fail][function][asan]") {
  const durable::function f{"guarded", []() { return fail_with_array_in_the_frame(); },
                            {.jitter = durable::jitter::none, .max_attempts = 1, .attempt_timeout = 1h}};
  const durable::failure failed = failure_of(f());
  CHECK(failed.code() == status::temporary_error);
  CHECK_THAT(failed.what(), Contains(frame_text));
}

TEST_CASE("every child's borrowed fail message is kept by any's all_failed", "[fail][fan_out][asan]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const std::vector<std::string> messages = rt.run([]() -> durable::durable_task<std::vector<std::string>> {
    std::vector<std::string> seen;
    try {
      co_await durable::any(fail_with_array_in_the_frame(), fail_with_mutable_array('?'));
    } catch (const durable::all_failed& all) {
      for (const std::exception_ptr& cause : all.causes()) {
        try {
          std::rethrow_exception(cause);
        } catch (const std::exception& e) {
          seen.emplace_back(e.what());
        }
      }
    }
    co_return seen;
  }());
  REQUIRE(messages.size() == 2);
  CHECK_THAT(messages[0], Contains(frame_text));
  CHECK_THAT(messages[1], Contains("?: a character array that may change is copied at once"));
}

TEST_CASE("a fail message in a character array stops at its NUL or at its end", "[fail][asan]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const std::string seen = rt.run([]() -> durable::durable_task<std::string> {
    std::string both;
    try {
      co_await []() -> durable::durable_task<> {
        static constexpr char unterminated[3] = {'a', 'b', 'c'};
        co_yield durable::fail(status::temporary_error, unterminated);
      }();
    } catch (const durable::error& e) {
      both += e.what();
    }
    both += "|";
    try {
      co_await []() -> durable::durable_task<> {
        char early[] = "xy\0after-the-nul";
        co_yield durable::fail(status::temporary_error, early);
      }();
    } catch (const durable::error& e) {
      both += e.what();
    }
    co_return both;
  }());
  CHECK(seen == "abc|xy");
}
