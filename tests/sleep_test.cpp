// Durable sleeps: waiting on purpose on the runtime's clock, without blocking a thread.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using durable::durable_task;

TEST_CASE("sleep_for resumes after the duration on the runtime's clock", "[sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto body = []() -> durable_task<int> {
    co_await durable::sleep_for(90min);
    co_return 1;
  };
  CHECK(rt.run(body()) == 1);
  CHECK(clock.now() == durable::time_point{} + 90min);
}

TEST_CASE("sleep_until resumes at the given time, and at once for a time already past", "[sleep]") {
  durable::manual_clock clock{durable::time_point{} + 1h};
  durable::runtime rt{clock};
  auto body = []() -> durable_task<> {
    co_await durable::sleep_until(durable::time_point{} + 3h);
    co_await durable::sleep_until(durable::time_point{});  // in the past
  };
  rt.run(body());
  CHECK(clock.now() == durable::time_point{} + 3h);
}

TEST_CASE("a sleeping task does not block others on the same thread", "[sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::vector<std::string> order;
  auto sleeper = [&order]() -> durable_task<> {
    order.push_back("sleeper starts");
    co_await durable::sleep_for(1s);
    order.push_back("sleeper wakes");
  };
  auto other = [&order]() -> durable_task<> {
    order.push_back("other runs");
    co_return;
  };
  rt.spawn(sleeper());
  rt.spawn(other());
  rt.run_until_idle();
  CHECK(order == std::vector<std::string>{"sleeper starts", "other runs", "sleeper wakes"});
}

TEST_CASE("a zero sleep lets other ready work run first", "[sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::vector<int> order;
  auto yielder = [&order]() -> durable_task<> {
    order.push_back(1);
    co_await durable::sleep_for(0s);
    order.push_back(3);
  };
  auto other = [&order]() -> durable_task<> {
    order.push_back(2);
    co_return;
  };
  rt.spawn(yielder());
  rt.spawn(other());
  rt.run_until_idle();
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(clock.now() == durable::time_point{});
}

TEST_CASE("a sleep inside a retried call waits again on each attempt", "[sleep][function]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int attempts = 0;
  const durable::function f{"sleepy",
                            [&attempts]() -> durable_task<int> {
                              co_await durable::sleep_for(10s);
                              if (++attempts < 2) throw durable::error(durable::status::temporary_error, "again");
                              co_return attempts;
                            },
                            {.initial_delay = 1s, .jitter = durable::jitter::none}};
  CHECK(rt.run(f()) == 2);
  CHECK(clock.now() == durable::time_point{} + 21s);  // 10 s, retry after 1 s, 10 s
}
