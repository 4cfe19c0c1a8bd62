// gather, any and race: several tasks at once, each a durable_task itself.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::failure_reason;
using durable::status;
using test_support::recorder;
using test_support::tracked;

namespace {

durable_task<int> value_after(std::chrono::nanoseconds delay, int value) {
  co_await durable::sleep_for(delay);
  co_return value;
}

durable_task<int> failure_after(std::chrono::nanoseconds delay, status code) {
  co_await durable::sleep_for(delay);
  co_yield durable::fail(code, "failed after " + std::to_string(delay.count()) + " ns");
  co_return 0;
}

durable_task<int> tracked_value_after(std::atomic<int>& live, std::chrono::nanoseconds delay, int value) {
  tracked guard(live);
  co_await durable::sleep_for(delay);
  co_return value;
}

std::chrono::nanoseconds elapsed(const durable::manual_clock& clock) { return clock.now().time_since_epoch(); }

}  // namespace

TEST_CASE("gather yields a tuple of every result, void as std::monostate", "[fan_out][gather]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto text = []() -> durable_task<std::string> { co_return "two"; };
  auto nothing = []() -> durable_task<> { co_return; };
  auto body = [&]() -> durable_task<std::tuple<int, std::string, std::monostate>> {
    auto all = durable::gather(value_after(1s, 1), text(), nothing());
    co_return co_await all;
  };
  const auto [one, two, none] = rt.run(body());
  CHECK(one == 1);
  CHECK(two == "two");
  CHECK(none == std::monostate{});
}

TEST_CASE("gather runs its tasks at once: it takes as long as the slowest", "[fan_out][gather]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<int> {
    auto all = durable::gather(value_after(3s, 1), value_after(2s, 2), value_after(1s, 3));
    const auto [a, b, c] = co_await all;
    co_return a + b + c;
  };
  CHECK(rt.run(body()) == 6);
  CHECK(elapsed(clock) == 3s);
}

TEST_CASE("gather of a range yields a vector in the range's order", "[fan_out][gather]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<std::vector<int>> {
    std::vector<durable_task<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(value_after(std::chrono::seconds(5 - i), i));
    auto all = durable::gather(tasks);
    co_return co_await all;
  };
  CHECK(rt.run(body()) == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(elapsed(clock) == 5s);
}

TEST_CASE("gather of an empty range yields an empty vector", "[fan_out][gather]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<std::size_t> {
    auto all = durable::gather(std::vector<durable_task<int>>{});
    co_return (co_await all).size();
  };
  CHECK(rt.run(body()) == 0);
}

TEST_CASE("gather fails with the first failure, after the other tasks were stopped", "[fan_out][gather]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  std::atomic<int> live_when_caught{-1};
  auto body = [&]() -> durable_task<> {
    auto all = durable::gather(tracked_value_after(live, 1h, 1), failure_after(1s, status::permanent_error),
                               tracked_value_after(live, 2h, 2));
    try {
      co_await all;
    } catch (const durable::error& e) {
      live_when_caught = live.load();
      throw;
    }
  };
  try {
    rt.run(body());
    FAIL("gather did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::permanent_error);
    CHECK_THAT(f.what(), Catch::Contains("failed after 1000000000 ns"));
  }
  CHECK(live_when_caught == 0);  // the others had ended (their destructors ran) already
  CHECK(elapsed(clock) == 1s);
}

TEST_CASE("each child call of a fan-out keeps its own retries", "[fan_out][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  recorder events(rt);
  int attempts = 0;
  const durable::function flaky{"flaky", [&attempts](int v) -> durable_task<int> {
                                  if (++attempts < 3) co_yield durable::fail(status::temporary_error, "again", 1s);
                                  co_return v;
                                }};
  const durable::function steady{"steady", [](int v) -> durable_task<int> { co_return v; }};
  auto body = [&]() -> durable_task<int> {
    auto all = durable::gather(flaky(1), steady(2));
    const auto [a, b] = co_await all;
    co_return a + b;
  };
  CHECK(rt.run(body()) == 3);
  CHECK(attempts == 3);
  CHECK(events.count(event_kind::retry_scheduled) == 2);
}

TEST_CASE("a retryable failure inside a gather makes the enclosing call retry it whole", "[fan_out][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int runs = 0;
  auto sometimes = [&runs]() -> durable_task<int> {
    if (runs++ == 0) co_yield durable::fail(status::temporary_error, "first run");
    co_return 10;
  };
  const durable::function both{"both", [&]() -> durable_task<int> {
                                 auto all = durable::gather(sometimes(), value_after(1s, 1));
                                 const auto [a, b] = co_await all;
                                 co_return a + b;
                               }};
  CHECK(rt.run(both()) == 11);
  CHECK(runs == 2);
}

TEST_CASE("any yields the first success and stops the others", "[fan_out][any]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  std::atomic<int> live_after{-1};
  auto body = [&]() -> durable_task<int> {
    auto first = durable::any(failure_after(1s, status::temporary_error), tracked_value_after(live, 2s, 2),
                              tracked_value_after(live, 1h, 3));
    const int v = co_await first;
    live_after = live.load();
    co_return v;
  };
  CHECK(rt.run(body()) == 2);
  CHECK(live_after == 0);
  CHECK(elapsed(clock) == 2s);
}

TEST_CASE("any fails only when every task failed, keeping each cause", "[fan_out][any]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto thrower = []() -> durable_task<int> {
    throw std::invalid_argument("bad input");
    co_return 0;
  };
  struct seen {
    std::size_t causes = 0;
    bool second_is_invalid_argument = false;
    status third_code = status::ok;
    status code = status::ok;
    std::string what;
  };
  auto body = [&]() -> durable_task<seen> {
    auto first = durable::any(failure_after(1s, status::permanent_error), thrower(),
                              failure_after(2s, status::temporary_error));
    seen s;
    try {
      co_await first;
    } catch (const durable::all_failed& f) {
      s.causes = f.causes().size();
      try {
        std::rethrow_exception(f.causes().at(1));
      } catch (const std::invalid_argument&) {
        s.second_is_invalid_argument = true;
      } catch (...) {
      }
      try {
        std::rethrow_exception(f.causes().at(2));
      } catch (const durable::error& e) {
        s.third_code = e.code();
      } catch (...) {
      }
      s.code = f.code();
      s.what = f.what();
    }
    co_return s;
  };
  const seen s = rt.run(body());
  CHECK(s.causes == 3);
  CHECK(s.second_is_invalid_argument);
  CHECK(s.third_code == status::temporary_error);
  CHECK(s.code == status::temporary_error);  // the first retryable one
  CHECK_THAT(s.what, Catch::Contains("all 3 tasks of durable::any failed"));
}

TEST_CASE("run of an any whose plain tasks all fail throws all_failed itself, its text said once",
          "[fan_out][any]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto thrower = [](const char* why) -> durable_task<int> {
    throw std::runtime_error(why);
    co_return 0;
  };
  std::string what;
  std::size_t causes = 0;
  try {
    rt.run(durable::any(thrower("a broke"), thrower("b broke")));
  } catch (const durable::all_failed& f) {
    what = f.what();
    causes = f.causes().size();
  }
  CHECK(causes == 2);
  CHECK_THAT(what, Catch::Contains("all 2 tasks of durable::any failed: [0] a broke; [1] b broke"));
  CHECK(what.find("task failed with") == what.rfind("task failed with"));  // the prefix once
}

TEST_CASE("race ends like the first task to end, even a failure, and stops the others", "[fan_out][race]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  auto failing = [&]() -> durable_task<int> {
    auto first = durable::race(tracked_value_after(live, 2s, 2), failure_after(1s, status::not_found));
    co_return co_await first;
  };
  try {
    rt.run(failing());
    FAIL("race did not fail");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::not_found);
  }
  CHECK(live == 0);
  CHECK(elapsed(clock) == 1s);

  auto winning = [&]() -> durable_task<int> {
    auto first = durable::race(tracked_value_after(live, 3s, 3), value_after(1s, 1));
    co_return co_await first;
  };
  CHECK(rt.run(winning()) == 1);
  CHECK(live == 0);
  CHECK(elapsed(clock) == 2s);
}

TEST_CASE("race and any of a range pick among the range's tasks", "[fan_out][race][any]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<int> {
    std::vector<durable_task<int>> tasks;
    for (int i = 1; i <= 3; ++i) tasks.push_back(value_after(std::chrono::seconds(4 - i), i));
    auto fastest = durable::race(tasks);
    const int r = co_await fastest;
    tasks.clear();
    for (int i = 1; i <= 3; ++i) tasks.push_back(value_after(std::chrono::seconds(i), i * 10));
    auto first = durable::any(tasks);
    co_return r + co_await first;
  };
  CHECK(rt.run(body()) == 3 + 10);
}

TEST_CASE("any and race of nothing, and an empty task, are errors", "[fan_out]") {
  CHECK_THROWS_AS(durable::any(std::vector<durable_task<int>>{}), std::invalid_argument);
  CHECK_THROWS_AS(durable::race(std::vector<durable_task<int>>{}), std::invalid_argument);
  durable_task<int> empty;
  CHECK_THROWS_AS(durable::gather(value_after(1s, 1), std::move(empty)), std::logic_error);
}

TEST_CASE("a stop request cancels every task of a fan-out", "[fan_out][cancel]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  auto body = [&]() -> durable_task<> {
    auto all = durable::gather(tracked_value_after(live, 1h, 1), tracked_value_after(live, 2h, 2));
    co_await all;
  };
  std::stop_source source;
  auto stopper = [&source]() -> durable_task<> {
    co_await durable::sleep_for(1s);
    source.request_stop();
  };
  rt.spawn(stopper());
  try {
    rt.run(body(), source.get_token());
    FAIL("the fan-out was not cancelled");
  } catch (const durable::failure& f) {
    CHECK(f.reason() == failure_reason::cancelled);
  }
  CHECK(live == 0);
  CHECK(elapsed(clock) == 1s);
}

TEST_CASE("a fan-out can be run directly and awaited with any policy", "[fan_out]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  CHECK(rt.run(durable::race(value_after(2s, 2), value_after(1s, 1))) == 1);
}

TEST_CASE("gather resumes its caller only after a stopped child call's attempt has ended, even one that caught the stop",
          "[fan_out][cancel][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::atomic<int> live{0};
  bool body_went_on = false;
  const durable::function sleeper{"sleeper", [&](tracked) -> durable_task<int> {
                                    tracked guard(live);
                                    bool stopped = false;
                                    try {
                                      co_await durable::sleep_for(1h);
                                    } catch (const durable::failure&) {
                                      stopped = true;
                                    }
                                    body_went_on = stopped;  // the body runs on after the stop
                                    co_return 1;
                                  }};
  struct seen {
    int live_at_resume = -1;
    bool body_went_on_before_resume = false;
  };
  auto caller = [&]() -> durable_task<seen> {
    seen s;
    auto child = sleeper(tracked(live));  // a named local: its argument temporary is gone now
    auto all = durable::gather(std::move(child), failure_after(1s, status::permanent_error));
    try {
      co_await all;
    } catch (const durable::error&) {
      s.live_at_resume = live.load();
      s.body_went_on_before_resume = body_went_on;
    }
    co_return s;
  };
  const seen s = rt.run(caller());
  CHECK(s.body_went_on_before_resume);
  CHECK(s.live_at_resume == 0);  // the attempt's locals, its argument copy and the call's are gone
  CHECK(elapsed(clock) == 1s);
}
