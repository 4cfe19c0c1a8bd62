// The runtime (SPEC §6) and the edge cases of running tasks: misuse is reported, observers
// cannot break a call, several threads may drive one runtime, time saturates.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::status;

namespace {

struct maintenance : std::runtime_error {
  using std::runtime_error::runtime_error;
};
using maintenance_is_temporary =
    durable::policy<durable::error_table<durable::on<maintenance, status::temporary_error>>>;

durable_task<int, maintenance_is_temporary> process(int item) {
  if (item == 0) throw maintenance("down for maintenance");
  if (item == 1) throw std::out_of_range("bad item");
  co_return item;
}

// Tries every item, then rethrows the first error: the caller uses the default policy, under
// which `maintenance` would be a permanent error.
durable_task<> process_all(int items) {
  std::exception_ptr first;
  for (int i = 0; i < items; ++i) {
    try {
      static_cast<void>(co_await process(i));
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

durable_task<int> free_function_body(int x) { co_return x + 1; }

// A foreign awaitable that never resumes its awaiter (an I/O completion that never comes).
struct never_resumed {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

struct record {
  const int id;  // movable, not assignable
  std::string name;
};

}  // namespace

TEST_CASE("running an empty task is reported as a logic error", "[runtime]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable_task<int> empty;
  CHECK_THROWS_AS(rt.run(std::move(empty)), std::logic_error);
  durable_task<int> also_empty;
  CHECK_THROWS_AS(rt.spawn(std::move(also_empty)), std::logic_error);
}

TEST_CASE("a callable that returns an empty task fails the call with invalid_argument", "[runtime]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto returns_nothing = []() -> durable_task<int> { return {}; };
  try {
    rt.run(durable::call(returns_nothing));
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::invalid_argument);
    CHECK_THAT(f.what(), Catch::Contains("empty durable_task"));
  }
}

TEST_CASE("run called from a task on the same runtime is an error, not a deadlock", "[runtime]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto inner = []() -> durable_task<int> { co_return 1; };
  auto outer = [&rt, &inner]() -> durable_task<int> { co_return rt.run(inner()); };
  try {
    rt.run(outer());
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::permanent_error);  // std::logic_error
    CHECK_THAT(f.what(), Catch::Contains("same runtime"));
  }
}

TEST_CASE("an exception rethrown later keeps the status it got where it was thrown", "[runtime][classification]") {
  // Whether other items failed in between must not change the verdict.
  durable::manual_clock clock;
  durable::runtime rt{clock};
  for (int items : {1, 2, 3}) {
    try {
      rt.run(process_all(items));
      FAIL("run returned");
    } catch (const durable::failure& f) {
      CHECK(f.code() == status::temporary_error);
    }
  }
}

TEST_CASE("an event callback that throws does not change the call", "[runtime][events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  rt.on_event([](const durable::event& e) {
    if (e.kind == event_kind::retry_scheduled) throw std::runtime_error("logger: disk full");
  });
  test_support::recorder log{rt};
  int n = 0;
  const durable::function f{"observed", [&n]() -> durable_task<int> {
                              if (++n < 3) throw durable::error(status::temporary_error, "again");
                              co_return n;
                            }};
  CHECK(rt.run(f()) == 3);
  CHECK(log.count(event_kind::retry_scheduled) == 2);  // later callbacks still ran
}

TEST_CASE("an event callback may register another callback", "[runtime][events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int late_events = 0;
  bool registered = false;
  rt.on_event([&](const durable::event&) {
    if (!registered) {
      registered = true;
      rt.on_event([&late_events](const durable::event&) { ++late_events; });
    }
  });
  const durable::function f{"f", []() -> durable_task<int> { co_return 1; }};
  CHECK(rt.run(f()) == 1);
  CHECK(late_events >= 1);
}

TEST_CASE("a delay too large for the clock means waiting until the end of time", "[runtime][retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  test_support::recorder log{rt};
  int n = 0;
  const durable::function f{"forever", [&n]() -> durable_task<int> {
                              if (++n < 2) {
                                co_yield durable::fail(status::throttled, "come back much later",
                                                       std::chrono::nanoseconds::max());
                              }
                              co_return n;
                            },
                            {.max_delay = std::chrono::nanoseconds::max()}};
  CHECK(rt.run(f()) == 2);
  const auto started = log.of(event_kind::attempt_started);
  REQUIRE(started.size() == 2);
  CHECK(started[1].time == durable::time_point::max());  // not an immediate retry
}

TEST_CASE("a task may return a type that is movable but not assignable", "[runtime]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto make = []() -> durable_task<record> { co_return record{7, "seven"}; };
  const record r = rt.run(make());
  CHECK(r.id == 7);
  CHECK(r.name == "seven");
}

TEST_CASE("durable::call accepts a plain function", "[runtime][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  CHECK(rt.run(durable::call(free_function_body, 41)) == 42);
}

TEST_CASE("a thread waiting for a timer wakes when another thread driving the runtime goes idle",
          "[runtime][threads]") {
  // Thread B finishes its own task but stays busy with work it spawned, until thread A's call
  // has scheduled its retry. A then waits: the manual clock may only jump when no thread is
  // busy. When B goes idle, A must be woken to jump the clock and finish.
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<bool> b_busy{false};
  std::atomic<bool> retry_scheduled{false};
  rt.on_event([&retry_scheduled](const durable::event& e) {
    if (e.kind == event_kind::retry_scheduled) retry_scheduled = true;
  });
  auto busy_until_retry_scheduled = [&]() -> durable_task<> {
    b_busy = true;
    while (!retry_scheduled) std::this_thread::yield();
    co_await never_resumed{};  // so that finishing it wakes nobody; the runtime destroys it
  };
  auto b_root = [&]() -> durable_task<> {
    rt.spawn(busy_until_retry_scheduled());  // runs on B right after b_root returns
    co_return;
  };
  int attempts = 0;
  const durable::function flaky{"flaky", [&attempts]() -> durable_task<int> {
                                  if (++attempts == 1) throw durable::error(status::temporary_error, "once");
                                  co_return 42;
                                },
                                {.initial_delay = 1s, .jitter = durable::jitter::none}};
  int a_result = 0;
  std::thread b([&] { rt.run(b_root()); });
  while (!b_busy) std::this_thread::yield();
  std::thread a([&] { a_result = rt.run(flaky()); });
  a.join();
  b.join();
  CHECK(a_result == 42);
  CHECK(attempts == 2);
}
