// Worker threads (runtime_options::workers): the work runs on them, callers only wait.
// Assertions stay on the test thread; what workers touch is atomic or published by run/join.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using durable::durable_task;
using durable::status;

namespace {

struct tracked {
  static inline std::atomic<int> live{0};
  tracked() { ++live; }
  tracked(const tracked&) { ++live; }
  ~tracked() { --live; }
};

}  // namespace

TEST_CASE("with workers, run returns the value computed on a worker thread", "[threads][workers]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  std::thread::id ran_on;
  auto body = [&ran_on]() -> durable_task<int> {
    ran_on = std::this_thread::get_id();
    co_return 7;
  };
  CHECK(rt.run(body()) == 7);
  CHECK(ran_on != std::this_thread::get_id());
}

TEST_CASE("many calls that fail once all complete on two workers", "[threads][workers]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  constexpr int calls = 2000;
  std::atomic<int> attempts{0};
  std::atomic<int> succeeded{0};
  // Each call fails on its first attempt (even ids retry at once, odd ones after a delay).
  std::vector<std::atomic<bool>> failed(calls);
  const durable::function flaky{"flaky",
                                [&](int i) -> durable_task<> {
                                  ++attempts;
                                  if (!failed[static_cast<std::size_t>(i)].exchange(true)) {
                                    co_yield durable::fail(status::temporary_error, "first attempt",
                                                           i % 2 == 0 ? 0ms : 5s);
                                  }
                                  ++succeeded;
                                },
                                {.jitter = durable::jitter::none}};
  for (int i = 0; i < calls; ++i) rt.spawn(flaky(i));
  rt.run_until_idle();
  CHECK(succeeded == calls);
  CHECK(attempts == 2 * calls);
}

TEST_CASE("run from a worker is reported as an error, not a deadlock", "[threads][workers]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 1}};
  auto inner = []() -> durable_task<int> { co_return 1; };
  auto outer = [&rt, &inner]() -> durable_task<int> { co_return rt.run(inner()); };
  try {
    rt.run(outer());
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::permanent_error);
  }
}

TEST_CASE("destroying a runtime with workers and pending calls joins them and frees the calls",
          "[threads][workers]") {
  {
    durable::manual_clock clock;
    durable::runtime rt{clock, {.workers = 2}};
    auto waits_long = [](tracked t) -> durable_task<> {
      static_cast<void>(t);
      co_yield durable::fail(status::temporary_error, "later", 1h);
    };
    auto quick = []() -> durable_task<int> { co_return 0; };
    for (int i = 0; i < 50; ++i) rt.spawn(durable::call(waits_long, tracked{}));
    rt.run(quick());
  }  // the calls wait for a retry an hour away: destroying the runtime must free them
  CHECK(tracked::live == 0);
}

TEST_CASE("sleepers on several workers each wake at their own time on a manual clock",
          "[threads][workers]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  constexpr int sleepers = 100;
  std::vector<std::atomic<std::int64_t>> woke_at(sleepers + 1);
  auto sleeper = [&](int minutes) -> durable_task<> {
    const durable::time_point target = durable::time_point{} + std::chrono::minutes(minutes);
    co_await durable::sleep_until(target);
    woke_at[static_cast<std::size_t>(minutes)] = (clock.now() - target).count();
  };
  for (int m = 1; m <= sleepers; ++m) woke_at[static_cast<std::size_t>(m)] = -1;
  for (int m = 1; m <= sleepers; ++m) rt.spawn(sleeper(m));
  rt.run_until_idle();
  int on_time = 0;
  for (int m = 1; m <= sleepers; ++m) on_time += woke_at[static_cast<std::size_t>(m)] == 0 ? 1 : 0;
  CHECK(on_time == sleepers);  // never early, never late: the clock stops at each timer
  CHECK(clock.now() == durable::time_point{} + std::chrono::minutes(sleepers));
}
