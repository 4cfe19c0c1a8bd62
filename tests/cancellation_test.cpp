// Cancellation with std::stop_token: a stop ends calls in every state, at once, and is never
// retried; the caller sees a durable::failure whose reason is `cancelled`.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::failure_reason;
using durable::status;
using test_support::gate;
using test_support::recorder;
using test_support::tracked;

namespace {

/// Requests a stop at a virtual time, from a task of its own on the same runtime.
durable_task<> stop_after(std::stop_source& source, std::chrono::nanoseconds delay) {
  co_await durable::sleep_for(delay);
  source.request_stop();
}

/// Runs `task` under `source`'s token and returns the failure it ends with.
template <class Task>
durable::failure run_expecting_failure(durable::runtime& rt, Task task, std::stop_source& source) {
  try {
    rt.run(std::move(task), source.get_token());
  } catch (const durable::failure& f) {
    return f;
  }
  FAIL("the task did not fail");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a stop requested before run starts fails the task as cancelled without running it", "[cancel]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int ran = 0;
  auto body = [&ran]() -> durable_task<int> {
    ++ran;
    co_return 1;
  };
  std::stop_source source;
  source.request_stop();
  const durable::failure f = run_expecting_failure(rt, body(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(ran == 0);
}

TEST_CASE("a call stopped before its first attempt never starts one", "[cancel][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  int attempts = 0;
  const durable::function f{"f", [&attempts]() -> durable_task<> {
                              ++attempts;
                              co_return;
                            }};
  auto outer = []() -> durable_task<> {
    co_await durable::sleep_for(2s);  // the stop comes while this sleeps...
    co_return;
  };
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  CHECK(run_expecting_failure(rt, outer(), source).reason() == failure_reason::cancelled);
  // ...and a call made under a token that is stopped already does not run at all.
  const durable::failure g = run_expecting_failure(rt, f(), source);
  CHECK(g.reason() == failure_reason::cancelled);
  CHECK(g.attempts() == 0);
  CHECK(attempts == 0);
  CHECK(events.count(event_kind::attempt_started) == 0);
}

TEST_CASE("a stop ends a call waiting for its retry at once, and it is not retried", "[cancel][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  int attempts = 0;
  const durable::function flaky{"flaky",
                                [&attempts]() -> durable_task<int> {
                                  ++attempts;
                                  co_yield durable::fail(status::temporary_error, "not yet");
                                  co_return 0;
                                },
                                {.initial_delay = 1h, .max_delay = 1h, .jitter = durable::jitter::none}};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  const durable::failure f = run_expecting_failure(rt, flaky(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(f.code() == status::temporary_error);  // the status of the attempt that failed last
  CHECK(f.attempts() == 1);
  CHECK(f.function_name() == "flaky");
  CHECK(attempts == 1);
  CHECK(clock.now() == durable::time_point{} + 1s);  // not the hour of the backoff
  CHECK(events.count(event_kind::failed) == 1);
}

TEST_CASE("a stop requested while an attempt fails is never retried", "[cancel][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::stop_source source;
  rt.on_event([&source](const durable::event& e) {
    if (e.kind == event_kind::attempt_failed) source.request_stop();
  });
  recorder events(rt);
  int attempts = 0;
  const durable::function flaky{"flaky", [&attempts]() -> durable_task<> {
                                  ++attempts;
                                  co_yield durable::fail(status::temporary_error, "not yet", 0ms);
                                }};
  const durable::failure f = run_expecting_failure(rt, flaky(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(attempts == 1);
  CHECK(events.count(event_kind::retry_scheduled) == 0);
}

TEST_CASE("a stop ends the sleep of a running attempt at once and its destructors run", "[cancel][sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  int attempts = 0;
  const durable::function sleeper{"sleeper", [&]() -> durable_task<int> {
                                    ++attempts;
                                    tracked guard(live);
                                    co_await durable::sleep_for(1h);
                                    co_return 1;
                                  }};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  const durable::failure f = run_expecting_failure(rt, sleeper(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(f.attempts() == 1);
  CHECK(attempts == 1);
  rt.run_until_idle();
  CHECK(live == 0);
  CHECK(clock.now() == durable::time_point{} + 1s);
}

TEST_CASE("a stop during a later attempt reports the status of the attempt that failed last",
          "[cancel][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  int attempts = 0;
  const durable::function resolve{"resolve",
                                  [&attempts]() -> durable_task<int> {
                                    if (++attempts == 1) throw durable::error(status::dns_error, "no such host");
                                    co_await durable::sleep_for(1h);
                                    co_return 1;
                                  },
                                  {.initial_delay = 1s, .max_delay = 1s, .jitter = durable::jitter::none}};
  std::stop_source source;
  rt.spawn(stop_after(source, 5s));
  const durable::failure f = run_expecting_failure(rt, resolve(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(f.code() == status::dns_error);
  CHECK(f.attempts() == 2);
  CHECK(attempts == 2);
  REQUIRE(events.count(event_kind::failed) == 1);
  CHECK(events.of(event_kind::failed).front().code == status::dns_error);
  const std::string what = f.what();
  CHECK(what.find("failed with") == what.rfind("failed with"));  // one failure's text, said once
}

TEST_CASE("a stop detaches an attempt suspended in a foreign awaitable: the call ends at once", "[cancel][foreign]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  gate socket;
  std::atomic<int> live{0};
  bool finished = false;
  const durable::function reader{"reader", [&]() -> durable_task<int> {
                                   tracked guard(live);
                                   co_await socket.wait();
                                   finished = true;
                                   co_return 42;
                                 }};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  const durable::failure f = run_expecting_failure(rt, reader(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(socket.waiting());
  CHECK(live == 1);  // the detached attempt is still suspended in the foreign awaitable
  const std::size_t events_before = events.events.size();

  socket.open();  // the foreign awaitable completes later, on its own thread
  rt.run_until_idle();
  CHECK(finished);
  CHECK(live == 0);                                // its frame was freed when it ended
  CHECK(events.events.size() == events_before);  // and its result went nowhere
}

TEST_CASE("a stop ends an attempt in a library wait before run throws: its locals and argument copies are gone",
          "[cancel][sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  const durable::function sleeper{"sleeper", [&live](tracked) -> durable_task<int> {
                                    tracked guard(live);
                                    co_await durable::sleep_for(1h);
                                    co_return 1;
                                  }};
  std::stop_source source;
  rt.spawn(stop_after(source, 5s));
  int live_when_run_threw = -1;
  auto call = sleeper(tracked(live));
  try {
    rt.run(std::move(call), source.get_token());
  } catch (const durable::failure& f) {
    CHECK(f.reason() == failure_reason::cancelled);
    live_when_run_threw = live.load();
  }
  CHECK(live_when_run_threw == 0);  // not only once the runtime is driven again
  CHECK(rt.detached_attempts() == 0);
  CHECK(clock.now() == durable::time_point{} + 5s);
}

TEST_CASE("an attempt detached in a foreign awaitable is counted, and drain waits until it has ended",
          "[cancel][foreign][drain]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  gate socket;
  std::atomic<int> live{0};
  const durable::function reader{"reader", [&]() -> durable_task<int> {
                                   tracked guard(live);
                                   co_await socket.wait();
                                   co_return 42;
                                 }};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  CHECK(run_expecting_failure(rt, reader(), source).reason() == failure_reason::cancelled);
  CHECK(rt.detached_attempts() == 1);
  CHECK(live == 1);
  std::thread opener([&socket] { socket.open(); });  // the foreign side completes on its own thread
  const bool drained = rt.drain(std::chrono::seconds(30));
  opener.join();
  CHECK(drained);
  CHECK(rt.detached_attempts() == 0);
  CHECK(live == 0);
}

TEST_CASE("drain gives up after its timeout while a detached attempt never ends", "[cancel][foreign][drain]") {
  durable::manual_clock clock;
  std::atomic<int> live{0};
  gate never_opened;
  {
    durable::runtime rt{clock, {.shutdown_grace = std::chrono::milliseconds(1)}};
    const durable::function reader{"reader", [&]() -> durable_task<int> {
                                     tracked guard(live);
                                     co_await never_opened.wait();
                                     co_return 42;
                                   }};
    std::stop_source source;
    rt.spawn(stop_after(source, 1s));
    CHECK(run_expecting_failure(rt, reader(), source).reason() == failure_reason::cancelled);
    CHECK_FALSE(rt.drain(std::chrono::milliseconds(1)));
    CHECK(rt.detached_attempts() == 1);
  }  // after its grace, the runtime destroys the attempt: the gate must never resume it now
  CHECK(live == 0);
}

TEST_CASE("destroying the runtime waits for a detached attempt that a foreign awaitable resumes from another thread",
          "[cancel][foreign][shutdown]") {
  durable::manual_clock clock;
  gate socket;
  std::atomic<int> live{0};
  std::atomic<bool> finished{false};
  std::thread opener;
  {
    durable::runtime rt{clock, {.shutdown_grace = std::chrono::seconds(60)}};
    const durable::function reader{"reader", [&]() -> durable_task<int> {
                                     tracked guard(live);
                                     co_await socket.wait();
                                     finished = true;
                                     co_return 42;
                                   }};
    std::stop_source source;
    rt.spawn(stop_after(source, 1s));
    CHECK(run_expecting_failure(rt, reader(), source).reason() == failure_reason::cancelled);
    opener = std::thread([&socket] { socket.open(); });
  }  // the destructor waits for the attempt instead of freeing the frame the opener resumes
  opener.join();
  CHECK(finished);
  CHECK(live == 0);
}

TEST_CASE("a stop during an attempt that caught it and then awaits a foreign awaitable detaches it there",
          "[cancel][foreign]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  gate socket;
  std::atomic<int> live{0};
  const durable::function stubborn{"stubborn", [&]() -> durable_task<int> {
                                     tracked guard(live);
                                     try {
                                       co_await durable::sleep_for(1h);
                                     } catch (const durable::failure&) {
                                     }
                                     co_await socket.wait();  // ignores the stop: the call must not wait for it
                                     co_return 1;
                                   }};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  CHECK(run_expecting_failure(rt, stubborn(), source).reason() == failure_reason::cancelled);
  CHECK(socket.waiting());
  CHECK(rt.detached_attempts() == 1);
  socket.open();
  CHECK(rt.detached_attempts() == 0);
  CHECK(live == 0);
}

TEST_CASE("a foreign awaitable that throws instead of suspending leaves its attempt one the call waits for",
          "[cancel][foreign]") {
  struct refusing_awaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const { throw std::runtime_error("no connection"); }
    void await_resume() const noexcept {}
  };
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  const durable::function sleeper{"sleeper", [&live]() -> durable_task<int> {
                                    tracked guard(live);
                                    try {
                                      co_await refusing_awaiter{};
                                    } catch (const std::runtime_error&) {
                                    }
                                    co_await durable::sleep_for(1h);  // a library wait again
                                    co_return 1;
                                  }};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  int live_when_run_threw = -1;
  try {
    rt.run(sleeper(), source.get_token());
  } catch (const durable::failure&) {
    live_when_run_threw = live.load();
  }
  CHECK(live_when_run_threw == 0);  // not detached as if it were still in the foreign awaitable
  CHECK(rt.detached_attempts() == 0);
}

TEST_CASE("a stop ends a sleeping plain task with a cancelled failure", "[cancel][sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<> { co_await durable::sleep_for(1h); };
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  const durable::failure f = run_expecting_failure(rt, body(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(clock.now() == durable::time_point{} + 1s);
}

TEST_CASE("a stop reaches calls nested inside the call, which end too", "[cancel][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  std::atomic<int> live{0};
  const durable::function inner{"inner", [&live]() -> durable_task<int> {
                                  tracked guard(live);
                                  co_await durable::sleep_for(1h);
                                  co_return 1;
                                }};
  const durable::function outer{"outer", [&inner]() -> durable_task<int> { co_return co_await inner(); }};
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  const durable::failure f = run_expecting_failure(rt, outer(), source);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(f.function_name() == "outer");
  CHECK(f.attempts() == 1);
  rt.run_until_idle();
  CHECK(live == 0);
  std::vector<std::string_view> failed;
  for (const auto& e : events.of(event_kind::failed)) failed.push_back(e.function_name);
  CHECK_THAT(failed, Catch::UnorderedEquals(std::vector<std::string_view>{"outer", "inner"}));
  CHECK(clock.now() == durable::time_point{} + 1s);
}

TEST_CASE("a body can read its stop token and see the stop request", "[cancel][stop_token]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  bool stop_seen = false;
  bool was_stoppable = false;
  auto body = [&]() -> durable_task<> {
    std::stop_token token = co_await durable::this_stop_token;
    was_stoppable = token.stop_possible();
    std::stop_callback on_stop(token, [&stop_seen] { stop_seen = true; });
    co_await durable::sleep_for(1h);
  };
  std::stop_source source;
  rt.spawn(stop_after(source, 1s));
  CHECK(run_expecting_failure(rt, body(), source).reason() == failure_reason::cancelled);
  CHECK(was_stoppable);
  CHECK(stop_seen);
}

TEST_CASE("a task that nothing can stop gets a token that can never be stopped", "[cancel][stop_token]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<bool> {
    std::stop_token token = co_await durable::this_stop_token;
    co_return token.stop_possible();
  };
  CHECK_FALSE(rt.run(body()));
}

TEST_CASE("spawn with a stop token: a stop cancels the spawned call and reports it failed", "[cancel][spawn]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  std::atomic<int> live{0};
  const durable::function sleeper{"sleeper", [&live]() -> durable_task<> {
                                    tracked guard(live);
                                    co_await durable::sleep_for(1h);
                                  }};
  std::stop_source source;
  rt.spawn(sleeper(), source.get_token());
  rt.spawn(stop_after(source, 1s));
  rt.run_until_idle();
  CHECK(live == 0);
  CHECK(clock.now() == durable::time_point{} + 1s);
  const auto failed = events.of(event_kind::failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].function_name == "sleeper");
}

TEST_CASE("a stop after the task finished changes nothing", "[cancel]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::stop_source source;
  auto body = []() -> durable_task<int> { co_return 5; };
  CHECK(rt.run(body(), source.get_token()) == 5);
  source.request_stop();
  CHECK(rt.run(body()) == 5);  // the runtime is still usable
}

TEST_CASE("destroying the runtime with pending work frees it all and runs its destructors", "[cancel][shutdown]") {
  std::atomic<int> live{0};
  gate socket;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    const durable::function waiting{"waiting",
                                    [&live]() -> durable_task<> {
                                      tracked guard(live);
                                      co_yield durable::fail(status::temporary_error, "later");
                                    },
                                    {.initial_delay = 1h, .max_delay = 1h}};
    const durable::function sleeping{"sleeping", [&live]() -> durable_task<> {
                                       tracked guard(live);
                                       co_await durable::sleep_for(1h);
                                     }};
    const durable::function timed{"timed",
                                  [&live, &socket]() -> durable_task<> {
                                    tracked guard(live);
                                    co_await socket.wait();
                                  },
                                  {.attempt_timeout = 1h}};
    rt.spawn(waiting());
    rt.spawn(sleeping());
    rt.spawn(timed());
    auto fan_out = [&]() -> durable_task<> {
      co_await durable::gather(sleeping(), sleeping());
    };
    rt.spawn(fan_out());
    // Run what is ready without letting the clock jump: every task is now suspended.
    auto yield_once = []() -> durable_task<> { co_await durable::sleep_for(0s); };
    rt.run(yield_once());
    CHECK(live == 4);  // `waiting`'s attempt ended; the call waits for its retry
  }  // the runtime is destroyed with all of them pending
  CHECK(live == 0);
}
