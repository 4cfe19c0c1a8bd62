// Durable functions and calls (SPEC §5): arguments, nesting, failures, policy validation.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::status;
using test_support::recorder;

namespace {

constexpr durable::retry_policy quick{.initial_delay = 1s, .jitter = durable::jitter::none};

int namespace_scope_calls = 0;
inline constexpr durable::function namespace_scope{
    "namespace_scope", [](int x) -> durable_task<int> {
      ++namespace_scope_calls;
      co_return x * 2;
    }};

}  // namespace

TEST_CASE("a durable::function declared constexpr at namespace scope can be called", "[function]") {
  STATIC_REQUIRE(namespace_scope.name() == "namespace_scope");
  durable::manual_clock clock;
  durable::runtime rt{clock};
  CHECK(rt.run(namespace_scope(21)) == 42);
  CHECK(namespace_scope_calls == 1);
}

TEST_CASE("each attempt gets a fresh copy of the arguments", "[function][arguments]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::vector<std::size_t> sizes_seen;
  const durable::function f{"mutates", [&sizes_seen](std::vector<int> v) -> durable_task<std::size_t> {
                              sizes_seen.push_back(v.size());
                              v.push_back(99);  // must not leak into the next attempt
                              v.clear();
                              if (sizes_seen.size() < 3) throw durable::error(status::temporary_error, "again");
                              co_return sizes_seen.size();
                            },
                            quick};
  CHECK(rt.run(f(std::vector<int>{1, 2, 3})) == 3);
  CHECK(sizes_seen == std::vector<std::size_t>{3, 3, 3});
}

TEST_CASE("an attempt that moves from an rvalue parameter leaves the next attempt's input intact",
          "[function][arguments]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::vector<std::string> seen;
  const durable::function f{"moves", [&seen](std::string&& s) -> durable_task<int> {
                              std::string taken = std::move(s);
                              seen.push_back(taken);
                              if (seen.size() < 2) throw durable::error(status::temporary_error, "again");
                              co_return 0;
                            },
                            quick};
  rt.run(f(std::string(40, 'a')));
  CHECK(seen == std::vector<std::string>{std::string(40, 'a'), std::string(40, 'a')});
}

TEST_CASE("a const reference parameter refers to the attempt's own live copy", "[function][arguments]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto wait_then_read = [](const std::string& s) -> durable_task<std::string> {
    co_await durable::call(quick, []() -> durable_task<> { co_return; });  // suspends the attempt
    co_return s;
  };
  std::string source(50, 'q');
  auto call = durable::call(wait_then_read, source);
  source.assign(50, 'x');  // the call stored its own copy
  CHECK(rt.run(std::move(call)) == std::string(50, 'q'));
}

TEST_CASE("a call's arguments outlive the variables they came from", "[function][arguments]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable_task<std::size_t> call;
  {
    std::string temporary(100, 'x');
    const durable::function f{"outlives", [](std::string s) -> durable_task<std::size_t> { co_return s.size(); }};
    call = f(temporary);
  }  // both the argument's source and the function object are gone
  CHECK(rt.run(std::move(call)) == 100);
}

TEST_CASE("a non-const reference parameter is reached through std::ref", "[function][arguments]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int counter = 0;
  const durable::function f{"by_ref", [](int& c) -> durable_task<> {
                              ++c;
                              co_return;
                            }};
  rt.run(f(std::ref(counter)));
  CHECK(counter == 1);
}

TEST_CASE("a failed child call fails the parent without retrying it", "[function][nesting]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int child_attempts = 0;
  int parent_attempts = 0;
  const durable::function child{"child", [&child_attempts]() -> durable_task<int> {
                                  ++child_attempts;
                                  throw durable::error(status::temporary_error, "still down");
                                  co_return 0;
                                },
                                {.jitter = durable::jitter::none, .max_attempts = 3}};
  const durable::function parent{"parent", [&]() -> durable_task<int> {
                                   ++parent_attempts;
                                   co_return co_await child();
                                 }};  // the parent's own policy would retry forever
  try {
    rt.run(parent());
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.function_name() == "parent");
    CHECK(f.code() == status::temporary_error);
    CHECK(f.attempts() == 1);
    CHECK(f.reason() == durable::failure_reason::attempts_exhausted);
    REQUIRE(f.cause() != nullptr);
    try {
      std::rethrow_exception(f.cause());
    } catch (const durable::failure& cause) {
      CHECK(cause.function_name() == "child");
      CHECK(cause.attempts() == 3);
    }
  }
  CHECK(child_attempts == 3);
  CHECK(parent_attempts == 1);
}

TEST_CASE("a parent may catch a child's failure and carry on", "[function][nesting]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const durable::function child{"child", []() -> durable_task<int> {
                                  co_yield durable::fail(status::not_found, "no such user");
                                  co_return 0;
                                }};
  auto parent = [&child]() -> durable_task<std::string> {
    try {
      static_cast<void>(co_await child());
    } catch (const durable::failure& f) {
      co_return std::string(durable::to_string(f.code()));
    }
    co_return "no failure";
  };
  CHECK(rt.run(parent()) == "NOT_FOUND");
}

TEST_CASE("a plain task's failure is retried by the nearest enclosing call", "[function][nesting]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int body_runs = 0;
  int helper_runs = 0;
  auto helper = [&helper_runs]() -> durable_task<int> {
    if (++helper_runs < 3) throw std::system_error(std::make_error_code(std::errc::connection_reset));
    co_return 5;
  };
  const durable::function f{"outer", [&]() -> durable_task<int> {
                              ++body_runs;
                              co_return co_await helper() + 1;
                            },
                            quick};
  CHECK(rt.run(f()) == 6);
  CHECK(body_runs == 3);
  CHECK(helper_runs == 3);
}

TEST_CASE("two concurrent calls of one function keep separate attempt counters", "[function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  std::map<int, int> invocations;
  const durable::function f{"shared", [&invocations](int needed) -> durable_task<int> {
                              if (++invocations[needed] < needed) throw durable::error(status::temporary_error, "not yet");
                              co_return needed;
                            },
                            {.jitter = durable::jitter::none, .max_attempts = 3}};
  rt.spawn(f(2));
  rt.spawn(f(3));
  rt.run_until_idle();
  CHECK(invocations[2] == 2);
  CHECK(invocations[3] == 3);
  const auto succeeded = log.of(event_kind::succeeded);
  REQUIRE(succeeded.size() == 2);
  CHECK(log.count(event_kind::failed) == 0);
}

TEST_CASE("a callable that throws before returning a task is classified and retried", "[function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int tries = 0;
  auto not_a_coroutine = [&tries]() -> durable_task<int> {
    if (++tries < 2) throw std::system_error(std::make_error_code(std::errc::timed_out));
    return []() -> durable_task<int> { co_return 11; }();
  };
  CHECK(rt.run(durable::call(quick, not_a_coroutine)) == 11);
  CHECK(tries == 2);
}

TEST_CASE("events report the name, attempt, status, delay and time of each step", "[function][events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int n = 0;
  const durable::function f{"observed", [&n]() -> durable_task<int> {
                              if (++n < 2) throw durable::error(status::dns_error, "no record");
                              co_return n;
                            },
                            {.initial_delay = 250ms, .jitter = durable::jitter::none}};
  rt.run(f());
  REQUIRE(log.events.size() == 5);
  const auto& e = log.events;
  CHECK(e[0].kind == event_kind::attempt_started);
  CHECK(e[0].attempt == 1);
  CHECK(e[1].kind == event_kind::attempt_failed);
  CHECK(e[1].code == status::dns_error);
  CHECK(e[2].kind == event_kind::retry_scheduled);
  CHECK(e[2].delay == 250ms);
  CHECK(e[2].attempt == 1);
  CHECK(e[3].kind == event_kind::attempt_started);
  CHECK(e[3].attempt == 2);
  CHECK(test_support::ms_since_epoch(e[3].time) == 250);
  CHECK(e[4].kind == event_kind::succeeded);
  for (const auto& ev : e) CHECK(ev.function_name == "observed");
}

TEST_CASE("one runtime runs many tasks, including after a run that threw", "[runtime]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const durable::function bad{"bad", []() -> durable_task<int> {
                                throw std::invalid_argument("no");
                                co_return 0;
                              }};
  const durable::function good{"good", [](int x) -> durable_task<int> { co_return x; }};
  CHECK_THROWS_AS(rt.run(bad()), durable::failure);
  CHECK(rt.run(good(1)) == 1);
  CHECK_THROWS_AS(rt.run(bad()), durable::failure);
  CHECK(rt.run(good(2)) == 2);
}

TEST_CASE("the failure message names the function, status, attempts and cause", "[function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const durable::function f{"send_email", []() -> durable_task<> {
                              throw durable::error(status::permanent_error, "user deactivated");
                              co_return;
                            }};
  try {
    rt.run(f());
    FAIL("run returned");
  } catch (const durable::failure& e) {
    const std::string what = e.what();
    CHECK(what.find("send_email") != std::string::npos);
    CHECK(what.find("PERMANENT_ERROR") != std::string::npos);
    CHECK(what.find("1 attempt") != std::string::npos);
    CHECK(what.find("user deactivated") != std::string::npos);
  }
}

TEST_CASE("a retry waits on the clock without blocking the thread", "[runtime]") {
  // While one call waits for its retry, another task runs to completion on the same thread.
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::vector<std::string> order;
  int n = 0;
  const durable::function slow{"slow", [&]() -> durable_task<> {
                                 order.push_back("slow attempt");
                                 if (++n < 2) throw durable::error(status::temporary_error, "wait");
                                 co_return;
                               },
                               {.initial_delay = 1h, .max_delay = 1h, .jitter = durable::jitter::none}};
  auto fast = [&order]() -> durable_task<> {
    order.push_back("fast");
    co_return;
  };
  rt.spawn(slow());
  rt.spawn(fast());
  rt.run_until_idle();
  CHECK(order == std::vector<std::string>{"slow attempt", "fast", "slow attempt"});
  CHECK(clock.now() == durable::time_point{} + 1h);
}

TEST_CASE("every invalid retry policy field is rejected with its name", "[function][policy]") {
  auto body = []() -> durable_task<> { co_return; };
  auto message_for = [&body](durable::retry_policy p) -> std::string {
    try {
      durable::function f{"bad", body, p};
      static_cast<void>(f);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(message_for({.initial_delay = -1ms}), Catch::Contains("initial_delay"));
  CHECK_THAT(message_for({.multiplier = 0.5}), Catch::Contains("multiplier"));
  CHECK_THAT(message_for({.multiplier = std::numeric_limits<double>::infinity()}), Catch::Contains("multiplier"));
  CHECK_THAT(message_for({.multiplier = std::numeric_limits<double>::quiet_NaN()}), Catch::Contains("multiplier"));
  CHECK_THAT(message_for({.max_delay = -1s}), Catch::Contains("max_delay"));
  CHECK_THAT(message_for({.initial_delay = 2s, .max_delay = 1s}), Catch::Contains("max_delay"));
  CHECK_THAT(message_for({.max_elapsed = -1s}), Catch::Contains("max_elapsed"));
  CHECK_THAT(message_for({.attempt_timeout = -1s}), Catch::Contains("attempt_timeout"));
  CHECK(message_for({.multiplier = 1.0}).empty());
  CHECK(message_for({}).empty());
}

TEST_CASE("durable::call with an invalid policy is rejected with the field's name", "[function][policy]") {
  auto body = []() -> durable_task<> { co_return; };
  CHECK_THROWS_WITH(durable::call(durable::retry_policy{.multiplier = 0.0}, body),
                    Catch::Contains("multiplier"));
}

TEST_CASE("an attempt's locals and arguments are gone before its failure is reported", "[function][events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int alive = 0;
  std::vector<int> alive_at_failure;
  rt.on_event([&](const durable::event& e) {
    if (e.kind == event_kind::attempt_failed || e.kind == event_kind::failed) alive_at_failure.push_back(alive);
  });
  struct counted {
    int* alive;
    explicit counted(int* a) : alive(a) { ++*alive; }
    counted(const counted& other) : alive(other.alive) { ++*alive; }
    counted& operator=(const counted&) = delete;
    ~counted() { --*alive; }
  };
  const durable::function f{"leaves_nothing_behind",
                            [](counted argument) -> durable_task<int> {
                              const counted local(argument.alive);
                              co_yield durable::fail(status::temporary_error, "not yet");
                              co_return 1;
                            },
                            {.jitter = durable::jitter::none, .max_attempts = 2}};
  {
    const counted original(&alive);
    CHECK_THROWS_AS(rt.run(f(original)), durable::failure);
  }
  CHECK(alive == 0);
  // Each report saw only the call's own copy of the argument alive: not the attempt's copy or
  // local, nor the caller's original (gone with its scope only after the run).
  CHECK(alive_at_failure == std::vector<int>{2, 2, 2});
}

TEST_CASE("an attempt that cannot start is reported like any failed attempt", "[function][events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int tries = 0;
  auto returns_nothing = [&tries]() -> durable_task<int> {
    if (++tries == 1) throw std::system_error(std::make_error_code(std::errc::timed_out));
    return {};  // an empty task: invalid_argument, not retried
  };
  try {
    rt.run(durable::call(quick, returns_nothing));
    FAIL("the call did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::invalid_argument);
    CHECK(f.attempts() == 2);
  }
  std::vector<event_kind> kinds;
  for (const auto& e : log.events) kinds.push_back(e.kind);
  CHECK(kinds == std::vector<event_kind>{event_kind::attempt_started, event_kind::attempt_failed,
                                         event_kind::retry_scheduled, event_kind::attempt_started,
                                         event_kind::attempt_failed, event_kind::failed});
}
