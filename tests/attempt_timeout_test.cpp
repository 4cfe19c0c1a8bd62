// retry_policy::attempt_timeout: an attempt that runs too long is asked to stop and the call goes
// on at once as a `timeout` failure; an attempt it cannot stop is detached.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <stop_token>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::failure_reason;
using durable::status;
using test_support::gate;
using test_support::recorder;
using test_support::tracked;

TEST_CASE("an attempt that runs past attempt_timeout fails with timeout and the call retries", "[attempt_timeout]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  int attempts = 0;
  const durable::function slow_once{"slow_once",
                                    [&attempts]() -> durable_task<int> {
                                      if (++attempts == 1) co_await durable::sleep_for(1h);
                                      co_return attempts;
                                    },
                                    {.initial_delay = 10ms, .jitter = durable::jitter::none, .attempt_timeout = 1s}};
  CHECK(rt.run(slow_once()) == 2);
  const auto failed = events.of(event_kind::attempt_failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].code == status::timeout);
  CHECK(clock.now() == durable::time_point{} + 1s + 10ms);
}

TEST_CASE("an attempt that finishes within attempt_timeout is unaffected", "[attempt_timeout]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  const durable::function quick{"quick",
                                []() -> durable_task<int> {
                                  co_await durable::sleep_for(999ms);
                                  co_return 7;
                                },
                                {.attempt_timeout = 1s}};
  CHECK(rt.run(quick()) == 7);
  CHECK(events.count(event_kind::attempt_started) == 1);
  CHECK(events.count(event_kind::attempt_failed) == 0);
  rt.run_until_idle();
  CHECK(clock.now() == durable::time_point{} + 999ms);  // the timeout's timer was dropped
}

TEST_CASE("the timed-out attempt's own sleep ends at once and its frame is freed", "[attempt_timeout]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  const durable::function stuck{"stuck",
                                [&live]() -> durable_task<> {
                                  tracked guard(live);
                                  co_await durable::sleep_for(1h);
                                },
                                {.jitter = durable::jitter::none, .max_attempts = 2, .attempt_timeout = 1s}};
  try {
    rt.run(stuck());
    FAIL("the call did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::timeout);
    CHECK(f.reason() == failure_reason::attempts_exhausted);
    CHECK(f.attempts() == 2);
  }
  rt.run_until_idle();
  CHECK(live == 0);
  CHECK(clock.now() == durable::time_point{} + 1s + 100ms + 1s);  // never the hour
}

TEST_CASE("an attempt in a foreign awaitable is detached at its timeout and its late result discarded",
          "[attempt_timeout][foreign]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  gate socket;
  std::atomic<int> live{0};
  int attempts = 0;
  const durable::function read{"read",
                               [&]() -> durable_task<int> {
                                 tracked guard(live);
                                 const int mine = ++attempts;
                                 if (mine == 1) co_await socket.wait();
                                 co_return mine;
                               },
                               {.attempt_timeout = 1s}};
  CHECK(rt.run(read()) == 2);
  CHECK(socket.waiting());
  CHECK(live == 1);  // attempt 1, detached, still suspended
  const std::size_t events_before = events.events.size();

  socket.open();
  rt.run_until_idle();
  CHECK(live == 0);
  CHECK(events.events.size() == events_before);
}

TEST_CASE("the attempt's stop token is stopped when it times out", "[attempt_timeout][stop_token]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  gate socket;
  bool stop_seen = false;
  const durable::function read{"read",
                               [&]() -> durable_task<> {
                                 std::stop_token token = co_await durable::this_stop_token;
                                 std::stop_callback on_stop(token, [&stop_seen] { stop_seen = true; });
                                 co_await socket.wait();
                               },
                               {.max_attempts = 1, .attempt_timeout = 1s}};
  CHECK_THROWS_AS(rt.run(read()), durable::failure);
  CHECK(stop_seen);  // the body can hand the token to its own I/O
  socket.open();
}

TEST_CASE("a call under attempt_timeout still runs its attempts' child calls and their retries", "[attempt_timeout]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int child_attempts = 0;
  const durable::function child{"child",
                                [&child_attempts]() -> durable_task<int> {
                                  if (++child_attempts < 3) co_yield durable::fail(status::temporary_error, "again", 0ms);
                                  co_return 3;
                                }};
  const durable::function parent{"parent", [&child]() -> durable_task<int> { co_return co_await child() + 1; },
                                 {.attempt_timeout = 1s}};
  CHECK(rt.run(parent()) == 4);
  CHECK(child_attempts == 3);
}

namespace {
struct reading {
  bool ready;
};
int inspections = 0;
durable::status check_ready(const reading& r) noexcept {
  ++inspections;
  return r.ready ? durable::status::ok : durable::status::temporary_error;
}
}  // namespace

TEST_CASE("a value from a timed attempt is inspected once, by the attempt", "[attempt_timeout][inspection]") {
  using outputs = durable::output_table<durable::inspect<reading, check_ready>>;
  using task = durable_task<reading, durable::policy<outputs>>;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int attempts = 0;
  inspections = 0;
  const durable::function poll{"poll", [&attempts]() -> task { co_return reading{++attempts == 2}; },
                               {.attempt_timeout = 1s}};
  CHECK(rt.run(poll()).ready);
  CHECK(attempts == 2);
  CHECK(inspections == 2);
}

TEST_CASE("a non-zero attempt_timeout is a valid policy", "[attempt_timeout][policy]") {
  CHECK_NOTHROW(durable::retry_policy{.attempt_timeout = 5s}.validate());
}

TEST_CASE("the timeouts of attempts that ended in time do not pile up in the timer heap", "[attempt_timeout][timers]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const durable::function quick{"quick", []() -> durable_task<int> { co_return 1; },
                                {.attempt_timeout = std::chrono::hours(1)}};
  // Due before every timeout, its timer stays at the top of the heap all along (the clock does
  // not move while the calls run): the cancelled timeouts pile up behind it unless swept.
  auto sleeper = []() -> durable_task<> { co_await durable::sleep_for(std::chrono::minutes(1)); };
  rt.spawn(sleeper());
  auto many = [&]() -> durable_task<int> {
    int sum = 0;
    for (int i = 0; i < 5000; ++i) sum += co_await quick();
    co_return sum;
  };
  CHECK(rt.run(many()) == 5000);
  // 5000 cancelled timeouts behind the sleeper's timer would be 5001 entries.
  CHECK(rt.timer_entries() <= 2 + 64);
}
