// durable::asio_driver: a durable runtime whose work runs on a user's io_context.
#include <catch2/catch.hpp>

#include <durable/asio.hpp>
#include <durable/durable.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using durable::durable_task;

TEST_CASE("a runtime driven by an io_context runs its tasks, timers and Asio awaits on the io threads",
          "[asio][driver]") {
  asio::io_context io;
  durable::asio_driver driver(io);
  durable::runtime rt{driver.options()};
  driver.drive(rt);
  std::optional<std::thread::id> started_on;
  std::optional<std::thread::id> after_post;
  std::optional<std::thread::id> after_sleep;
  auto task = [&]() -> durable_task<> {
    started_on = std::this_thread::get_id();
    co_await asio::post(io, durable::use_task);
    after_post = std::this_thread::get_id();
    co_await durable::sleep_for(5ms);  // a durable timer, armed as an Asio timer
    after_sleep = std::this_thread::get_id();
  };
  rt.spawn(task());
  io.run();  // returns once nothing is left: the task has finished
  CHECK(started_on == std::this_thread::get_id());
  CHECK(after_post == std::this_thread::get_id());
  CHECK(after_sleep == std::this_thread::get_id());
}

TEST_CASE("a completion from a foreign thread resumes its task on the io_context", "[asio][driver]") {
  asio::io_context io;
  auto keep = asio::make_work_guard(io);  // the completion is not an Asio operation
  durable::asio_driver driver(io);
  durable::runtime rt{driver.options()};
  driver.drive(rt);
  std::optional<std::thread::id> resumed_on;
  std::thread::id completing;
  auto task = [&]() -> durable_task<> {
    const int n = co_await durable::completion<int>([&](durable::completer<int> done) {
      std::thread([&completing, done = std::move(done)]() mutable {
        completing = std::this_thread::get_id();
        done.set_value(1);
      }).detach();
    });
    resumed_on = std::this_thread::get_id();
    CHECK(n == 1);
    keep.reset();
  };
  rt.spawn(task());
  io.run();
  CHECK(resumed_on == std::this_thread::get_id());
  CHECK(resumed_on != completing);
}

TEST_CASE("an Asio operation completing on the driver's io_context resumes its task inside that handler",
          "[asio][driver]") {
  asio::io_context io;
  durable::asio_driver driver(io);
  durable::runtime rt{driver.options()};
  driver.drive(rt);
  constexpr int awaits = 10;
  int done = 0;
  auto task = [&]() -> durable_task<> {
    for (int i = 0; i < awaits; ++i) co_await asio::post(io, durable::use_task);
    ++done;
  };
  rt.spawn(task());
  // One handler polls the runtime (which starts the task), then one per posted completion,
  // each of which also runs the task on to its next await: no poll of its own per await.
  CHECK(io.run() == awaits + 1);
  CHECK(done == 1);
}

TEST_CASE("work_available with worker threads is refused", "[asio][driver]") {
  CHECK_THROWS_AS(durable::runtime({.workers = 2, .work_available = [] {}}), std::invalid_argument);
}
