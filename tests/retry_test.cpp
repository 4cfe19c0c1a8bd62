// Retries of durable functions (SPEC §5): backoff, attempt limits, deadlines, hints, jitter.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::status;
using test_support::recorder;

namespace {

/// A body that fails with `code` until its `n`-th invocation, then returns n.
struct fails_until {
  int* invocations;
  int succeed_on;
  status code = status::temporary_error;

  durable_task<int> operator()() const {
    const int n = ++*invocations;
    if (n < succeed_on) throw durable::error(code, "attempt " + std::to_string(n) + " failed");
    co_return n;
  }
};

durable::retry_policy no_jitter(durable::retry_policy p = {}) {
  p.jitter = durable::jitter::none;
  return p;
}

}  // namespace

TEST_CASE("delays grow by the multiplier from the initial delay", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"grows", fails_until{&invocations, 5}, no_jitter({.initial_delay = 100ms, .multiplier = 3.0})};
  CHECK(rt.run(f()) == 5);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{100, 300, 900, 2700});
  CHECK(test_support::ms_since_epoch(clock.now()) == 4000);
}

TEST_CASE("a delay never exceeds max_delay", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"capped", fails_until{&invocations, 6},
                            no_jitter({.initial_delay = 1s, .max_delay = 5s})};
  CHECK(rt.run(f()) == 6);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{1000, 2000, 4000, 5000, 5000});
}

TEST_CASE("the default policy retries until the call succeeds", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"patient", fails_until{&invocations, 40}};
  CHECK(rt.run(f()) == 40);
  CHECK(log.count(event_kind::attempt_started) == 40);
  CHECK(log.count(event_kind::retry_scheduled) == 39);
  CHECK(log.count(event_kind::succeeded) == 1);
}

TEST_CASE("max_attempts bounds the attempts and the last delay is not slept", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"bounded", fails_until{&invocations, 100},
                            no_jitter({.max_attempts = 3})};
  try {
    rt.run(f());
    FAIL("run returned");
  } catch (const durable::failure& e) {
    CHECK(e.code() == status::temporary_error);
    CHECK(e.reason() == durable::failure_reason::attempts_exhausted);
    CHECK(e.attempts() == 3);
    CHECK(e.function_name() == "bounded");
    REQUIRE(e.cause() != nullptr);
    CHECK_THROWS_AS(std::rethrow_exception(e.cause()), durable::error);
  }
  CHECK(invocations == 3);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{100, 200});
  CHECK(test_support::ms_since_epoch(clock.now()) == 300);  // no third delay
  REQUIRE(log.count(event_kind::failed) == 1);
  CHECK(log.of(event_kind::failed)[0].attempt == 3);
}

TEST_CASE("a fatal status stops the call after one attempt", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"fatal", fails_until{&invocations, 100, status::permanent_error}};
  try {
    rt.run(f());
    FAIL("run returned");
  } catch (const durable::failure& e) {
    CHECK(e.code() == status::permanent_error);
    CHECK(e.reason() == durable::failure_reason::fatal_status);
    CHECK(e.attempts() == 1);
  }
  CHECK(invocations == 1);
  CHECK(log.count(event_kind::retry_scheduled) == 0);
}

TEST_CASE("every retryable status is retried and every fatal one is not", "[retry]") {
  for (std::uint8_t v = 2; v <= 15; ++v) {
    const auto code = static_cast<status>(v);
    durable::manual_clock clock;
    durable::runtime rt{clock};
    int invocations = 0;
    const durable::function f{"each", fails_until{&invocations, 2, code}, no_jitter()};
    if (durable::is_retryable(code)) {
      CHECK(rt.run(f()) == 2);
    } else {
      CHECK_THROWS_AS(rt.run(f()), durable::failure);
      CHECK(invocations == 1);
    }
  }
}

TEST_CASE("incompatible_state restarts the call and counts like any retry", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"restart", fails_until{&invocations, 3, status::incompatible_state},
                            no_jitter()};
  CHECK(rt.run(f()) == 3);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{100, 200});
}

TEST_CASE("a retry-after hint replaces the computed delay without jitter", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.seed = 7}};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"hinted", [&invocations]() -> durable_task<int> {
                              if (++invocations < 3) throw durable::error(status::throttled, "slow down", 2s);
                              co_return invocations;
                            }};  // default jitter is full: the hint must not be jittered
  CHECK(rt.run(f()) == 3);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{2000, 2000});
}

TEST_CASE("a retry-after hint is clamped by max_delay", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"clamped",
                            [&invocations]() -> durable_task<int> {
                              if (++invocations < 2) {
                                co_yield durable::fail(status::throttled, "later", 5min);
                              }
                              co_return invocations;
                            },
                            {.max_delay = 60s}};
  CHECK(rt.run(f()) == 2);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{60'000});
}

TEST_CASE("delays are clipped to max_elapsed and no attempt starts after it", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"deadline", fails_until{&invocations, 100},
                            no_jitter({.max_elapsed = 1s})};
  try {
    rt.run(f());
    FAIL("run returned");
  } catch (const durable::failure& e) {
    CHECK(e.reason() == durable::failure_reason::deadline_exceeded);
    CHECK(e.code() == status::temporary_error);
    CHECK(e.attempts() == 5);
  }
  // 100 + 200 + 400 = 700 ms, then 800 ms clipped to the 300 ms that remain.
  CHECK(log.delays_ms() == std::vector<std::int64_t>{100, 200, 400, 300});
  for (const auto& e : log.of(event_kind::attempt_started)) {
    CHECK(test_support::ms_since_epoch(e.time) <= 1000);
  }
}

TEST_CASE("a retry-after hint is clipped to the deadline", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"hint-deadline",
                            [&invocations]() -> durable_task<int> {
                              if (++invocations < 3) throw durable::error(status::throttled, "wait", 40s);
                              co_return invocations;
                            },
                            {.max_elapsed = 50s}};
  CHECK(rt.run(f()) == 3);
  CHECK(log.delays_ms() == std::vector<std::int64_t>{40'000, 10'000});
}

TEST_CASE("a hundred thousand immediate retries do not grow the stack", "[retry][deep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int invocations = 0;
  const durable::function f{"immediate",
                            [&invocations]() -> durable_task<int> {
                              if (++invocations <= 100'000) co_yield durable::fail(status::temporary_error, "again");
                              co_return invocations;
                            },
                            no_jitter({.initial_delay = 0ms})};
  CHECK(rt.run(f()) == 100'001);
  CHECK(clock.now() == durable::time_point{});
}

TEST_CASE("full jitter stays within [0, d]", "[retry][jitter]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.seed = 42}};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"full", fails_until{&invocations, 2001},
                            {.initial_delay = 1s, .multiplier = 1.0, .jitter = durable::jitter::full}};
  rt.run(f());
  const auto delays = log.delays_ms();
  REQUIRE(delays.size() == 2000);
  std::int64_t low = 1000, high = 0;
  for (auto d : delays) {
    low = std::min(low, d);
    high = std::max(high, d);
  }
  CHECK(low >= 0);
  CHECK(high <= 1000);
  CHECK(low < 50);     // the samples spread over the whole range
  CHECK(high > 950);
}

TEST_CASE("equal jitter stays within [d/2, d]", "[retry][jitter]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.seed = 42}};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"equal", fails_until{&invocations, 2001},
                            {.initial_delay = 1s, .multiplier = 1.0, .jitter = durable::jitter::equal}};
  rt.run(f());
  std::int64_t low = 1000, high = 0;
  for (auto d : log.delays_ms()) {
    low = std::min(low, d);
    high = std::max(high, d);
  }
  CHECK(low >= 500);
  CHECK(high <= 1000);
  CHECK(low < 550);
  CHECK(high > 950);
}

TEST_CASE("decorrelated jitter stays within [initial, min(max, 3 x previous)]", "[retry][jitter]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.seed = 42}};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"decorrelated", fails_until{&invocations, 2001},
                            {.initial_delay = 100ms, .max_delay = 10s,
                             .jitter = durable::jitter::decorrelated}};
  rt.run(f());
  const auto retries = log.of(event_kind::retry_scheduled);
  REQUIRE(retries.size() == 2000);
  auto previous = std::chrono::nanoseconds(100ms);
  bool reached_cap = false;
  for (const auto& e : retries) {
    CHECK(e.delay >= 100ms);
    CHECK(e.delay <= std::min<std::chrono::nanoseconds>(10s, 3 * previous));
    reached_cap = reached_cap || e.delay == 10s;
    previous = e.delay;
  }
  CHECK(reached_cap);
}

TEST_CASE("a fixed seed gives the same delays and another seed different ones", "[retry][jitter]") {
  auto delays_with = [](std::uint64_t seed) {
    durable::manual_clock clock;
    durable::runtime rt{clock, {.seed = seed}};
    recorder log{rt};
    int invocations = 0;
    const durable::function f{"seeded", fails_until{&invocations, 20}};
    rt.run(f());
    return log.delays_ms();
  };
  CHECK(delays_with(1) == delays_with(1));
  CHECK(delays_with(1) != delays_with(2));
}

TEST_CASE("random bits map to [0, 1) portably", "[retry][jitter]") {
  STATIC_REQUIRE(durable::detail::unit_interval(0) == 0.0);
  STATIC_REQUIRE(durable::detail::unit_interval(~std::uint64_t{0}) < 1.0);
  STATIC_REQUIRE(durable::detail::unit_interval(std::uint64_t{1} << 63) == 0.5);
}

TEST_CASE("backoff saturates at max_delay and does not overflow after very many retries", "[retry]") {
  const durable::retry_policy p{.initial_delay = 1s, .multiplier = 10.0, .max_delay = 1h};
  auto base = durable::detail::first_base_delay(p);
  CHECK(durable::detail::to_delay(p, base) == 1s);
  base = durable::detail::next_base_delay(p, base);
  CHECK(durable::detail::to_delay(p, base) == 10s);
  base = durable::detail::next_base_delay(p, base);
  CHECK(durable::detail::to_delay(p, base) == 100s);
  for (int i = 0; i < 1'000'000; ++i) base = durable::detail::next_base_delay(p, base);
  CHECK(durable::detail::to_delay(p, base) == 1h);
  const durable::retry_policy huge{.initial_delay = 1s, .multiplier = 1e300, .max_delay = 24h};
  const auto second = durable::detail::next_base_delay(huge, durable::detail::first_base_delay(huge));
  CHECK(durable::detail::to_delay(huge, durable::detail::next_base_delay(huge, second)) == 24h);
  CHECK(durable::detail::to_delay(huge, durable::detail::base_delay_after(huge, 4'000'000'000U)) == 24h);
}

namespace {
/// The delays of `retries` retries in a row of a call that always fails, on a manual clock.
std::vector<std::chrono::nanoseconds> retry_delays(const durable::retry_policy& policy, std::uint32_t retries) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::vector<std::chrono::nanoseconds> delays;
  rt.on_event([&delays](const durable::event& e) {
    if (e.kind == event_kind::retry_scheduled) delays.push_back(e.delay);
  });
  durable::retry_policy p = policy;
  p.jitter = durable::jitter::none;
  p.max_attempts = retries + 1;
  const durable::function f{"fails", [](int) -> durable_task<> {
                              co_yield durable::fail(status::temporary_error, "again");
                            }, p};
  try {
    rt.run(f(0));
  } catch (const durable::failure&) {
  }
  return delays;
}

/// How far each delay is from `min(max_delay, initial_delay x multiplier^(n-1))`, at most.
std::chrono::nanoseconds worst_distance_from_formula(const durable::retry_policy& p,
                                                     const std::vector<std::chrono::nanoseconds>& delays) {
  long double worst = 0;
  for (std::size_t i = 0; i < delays.size(); ++i) {
    const long double formula = std::min<long double>(
        static_cast<long double>(p.max_delay.count()),
        static_cast<long double>(p.initial_delay.count()) *
            std::pow(static_cast<long double>(p.multiplier), static_cast<long double>(i)));
    worst = std::max(worst, std::fabs(static_cast<long double>(delays[i].count()) - formula));
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(worst)));
}
}  // namespace

TEST_CASE("the n-th delay follows initial_delay x multiplier^(n-1) to within 1 ns, however small the delay",
          "[retry][formula]") {
  const durable::retry_policy p{.initial_delay = 1ns, .multiplier = 1.5, .max_delay = 1ms};
  const auto delays = retry_delays(p, 60);
  REQUIRE(delays.size() == 60);
  CHECK(delays.back() == 1ms);  // it grows all the way to the cap
  CHECK(worst_distance_from_formula(p, delays) <= 1ns);
}

TEST_CASE("the n-th delay follows the formula to within 1 ns for a multiplier near 1, over 10,000 retries",
          "[retry][formula]") {
  const durable::retry_policy p{.initial_delay = 1ms, .multiplier = 1.001, .max_delay = 1h};
  const auto delays = retry_delays(p, 10'000);
  REQUIRE(delays.size() == 10'000);
  CHECK(delays[80] > 1ms);
  CHECK(worst_distance_from_formula(p, delays) <= 1ns);
}

TEST_CASE("a call failing at once, again and again, still lets other work of its thread run", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  bool other_ran = false;
  int invocations = 0;
  const durable::function f{"spins",
                            [&]() -> durable_task<int> {
                              if (++invocations == 1) {
                                rt.spawn([](bool& ran) -> durable_task<> {
                                  ran = true;
                                  co_return;
                                }(other_ran));
                              }
                              // Without fairness this would spin until the bound below.
                              if (!other_ran && invocations < 100'000) {
                                co_yield durable::fail(status::temporary_error, "again");
                              }
                              co_return invocations;
                            },
                            no_jitter({.initial_delay = 0ms})};
  const int finished_at = rt.run(f());
  CHECK(other_ran);
  CHECK(finished_at < 100);
}

TEST_CASE("immediate retries report every attempt in order", "[retry]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder log{rt};
  int invocations = 0;
  const durable::function f{"immediate-events", fails_until{&invocations, 40}, no_jitter({.initial_delay = 0ms})};
  CHECK(rt.run(f()) == 40);
  CHECK(log.count(event_kind::attempt_started) == 40);
  CHECK(log.count(event_kind::retry_scheduled) == 39);
  CHECK(log.delays_ms() == std::vector<std::int64_t>(39, 0));
}
