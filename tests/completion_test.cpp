// durable::completion: work completed by another library, from any thread.
#include <catch2/catch.hpp>

#include <durable/completion.hpp>
#include <durable/durable.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;
using durable::completer;
using durable::durable_task;
using durable::status;

namespace {

/// A foreign thread that completes what it is handed, when the test says so.
class foreign_thread {
 public:
  std::promise<completer<int>> handed;
  std::optional<completer<int>> held;

  /// Takes the completer the task handed over (waits for it).
  completer<int>& receive() {
    held.emplace(handed.get_future().get());
    return *held;
  }
};

}  // namespace

TEST_CASE("a completion completed on another thread resumes the task on its runtime, not on that thread",
          "[completion]") {
  durable::runtime rt{{.workers = 1}};
  std::thread::id before_await;
  std::thread::id after_await;
  std::thread::id completing;
  auto task = [&]() -> durable_task<int> {
    before_await = std::this_thread::get_id();
    const int n = co_await durable::completion<int>([&](completer<int> done) {
      std::thread([&completing, done = std::move(done)]() mutable {
        completing = std::this_thread::get_id();
        done.set_value(42);
      }).detach();
    });
    after_await = std::this_thread::get_id();
    co_return n;
  };
  CHECK(rt.run(task()) == 42);
  CHECK(after_await == before_await);  // the runtime's one worker
  CHECK(after_await != completing);
}

TEST_CASE("a completion completed inside its initiation goes on without suspending", "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto task = []() -> durable_task<std::string> {
    co_return co_await durable::completion<std::string>([](completer<std::string> done) { done.set_value("now"); });
  };
  CHECK(rt.run(task()) == "now");
}

TEST_CASE("a task completing another task's completion resumes it, and the runtime then counts it as ended",
          "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::optional<completer<int>> handed;
  std::optional<int> received;
  auto waiter = [&]() -> durable_task<> {
    received = co_await durable::completion<int>([&](completer<int> done) { handed.emplace(std::move(done)); });
    // The wait has ended: the clock may jump again, so this sleep finishes.
    co_await durable::sleep_for(1h);
  };
  auto completing = [&]() -> durable_task<> {
    REQUIRE(handed.has_value());  // spawned second, so it runs once the waiter has suspended
    handed->set_value(7);
    co_return;
  };
  rt.spawn(waiter());
  rt.spawn(completing());
  rt.run_until_idle();
  CHECK(received == 7);
  CHECK(rt.now().time_since_epoch() == 1h);
}

TEST_CASE("a completion<void> resumes the task with no value", "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  bool resumed = false;
  auto task = [&]() -> durable_task<> {
    co_await durable::completion<>([&](completer<> done) {
      std::thread([done = std::move(done)]() mutable { done.set_value(); }).detach();
    });
    resumed = true;
  };
  rt.run(task());
  CHECK(resumed);
}

TEST_CASE("an exception completing a completion is classified by the error table and retried", "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  test_support::recorder events(rt);
  int attempts = 0;
  const durable::function connect{"connect", [&]() -> durable_task<int> {
    const int attempt = ++attempts;
    co_return co_await durable::completion<int>([attempt](completer<int> done) {
      std::thread([attempt, done = std::move(done)]() mutable {
        if (attempt == 1) {
          done.set_error(std::make_error_code(std::errc::connection_refused), "connect");
        } else {
          done.set_value(7);
        }
      }).detach();
    });
  }};
  CHECK(rt.run(connect()) == 7);
  REQUIRE(events.count(durable::event_kind::attempt_failed) == 1);
  CHECK(events.of(durable::event_kind::attempt_failed).at(0).code == status::tcp_error);
}

TEST_CASE("a stop request reaches the completer, and the task ends with a cancellation once it completes",
          "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::stop_source stop;
  foreign_thread foreign;
  auto task = [&]() -> durable_task<int> {
    co_return co_await durable::completion<int>([&](completer<int> done) { foreign.handed.set_value(std::move(done)); });
  };
  std::thread cancelling_side([&] {
    completer<int>& done = foreign.receive();
    CHECK_FALSE(done.cancelled());
    stop.request_stop();
    CHECK(done.stop_token().stop_requested());
    CHECK(done.cancelled());
    done.set_value(1);  // as a cancelled operation completes: promptly, with anything
  });
  try {
    static_cast<void>(rt.run(task(), stop.get_token()));
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.reason() == durable::failure_reason::cancelled);
  }
  cancelling_side.join();
}

TEST_CASE("a call stopped while its attempt waits on a completion detaches it; the late completion ends it",
          "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::stop_source stop;
  foreign_thread foreign;
  std::atomic<bool> attempt_ended{false};
  const durable::function read{"read", [&]() -> durable_task<int> {
    struct on_exit {
      std::atomic<bool>* ended;
      ~on_exit() { ended->store(true); }
    } mark{&attempt_ended};
    co_return co_await durable::completion<int>([&](completer<int> done) { foreign.handed.set_value(std::move(done)); });
  }};
  std::thread stopper([&] {
    static_cast<void>(foreign.receive());
    stop.request_stop();
  });
  CHECK_THROWS_AS(rt.run(read(), stop.get_token()), durable::failure);
  stopper.join();
  CHECK(rt.detached_attempts() == 1);
  CHECK_FALSE(attempt_ended.load());  // its frame (what the foreign side may still use) lives
  foreign.held->set_value(9);         // too late: dropped, and the attempt ends
  CHECK(rt.drain(std::chrono::seconds(30)));
  CHECK(attempt_ended.load());
  CHECK(rt.detached_attempts() == 0);
}

TEST_CASE("a completion whose task was stopped before it began starts nothing", "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::stop_source stop;
  stop.request_stop();
  bool initiated = false;
  auto task = [&]() -> durable_task<int> {
    co_return co_await durable::completion<int>([&](completer<int>) { initiated = true; });
  };
  CHECK_THROWS_AS(rt.run(task(), stop.get_token()), durable::failure);
  CHECK_FALSE(initiated);
}

TEST_CASE("a completer destroyed without completing fails the wait with a logic_error, never retried", "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  auto task = []() -> durable_task<int> {
    co_return co_await durable::completion<int>([](completer<int> done) {
      std::thread([done = std::move(done)] {}).detach();  // drops it
    });
  };
  try {
    static_cast<void>(rt.run(task()));
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.code() == status::permanent_error);  // how the error table maps std::logic_error
    CHECK_THAT(f.what(), Catch::Contains("durable::completer destroyed without completing"));
  }
}

TEST_CASE("completing a completer twice is a logic_error", "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  bool second_refused = false;
  auto task = [&]() -> durable_task<int> {
    co_return co_await durable::completion<int>([&](completer<int> done) {
      done.set_value(1);
      try {
        done.set_value(2);
      } catch (const std::logic_error&) {
        second_refused = true;
      }
    });
  };
  CHECK(rt.run(task()) == 1);
  CHECK(second_refused);
}

TEST_CASE("run_until_idle waits for a pending completion, and a manual clock does not jump meanwhile",
          "[completion]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  foreign_thread foreign;
  std::optional<int> got;
  auto waiter = [&]() -> durable_task<> {
    got = co_await durable::completion<int>([&](completer<int> done) { foreign.handed.set_value(std::move(done)); });
  };
  bool slept = false;
  auto sleeper = [&]() -> durable_task<> {
    co_await durable::sleep_for(1h);
    slept = true;
  };
  rt.spawn(sleeper());
  rt.spawn(waiter());
  const durable::time_point start = clock.now();
  std::optional<durable::time_point> clock_when_completed;
  std::thread completing([&] {
    completer<int>& done = foreign.receive();
    clock_when_completed = clock.now();
    done.set_value(5);
  });
  rt.run_until_idle();
  completing.join();
  CHECK(got == 5);
  CHECK(slept);
  CHECK(clock_when_completed == start);  // the hour passed only after the completion
}

TEST_CASE("a completion arriving after the runtime destroyed its task touches nothing", "[completion]") {
  foreign_thread foreign;
  {
    durable::runtime rt{{.workers = 1}};  // runs the task until it waits
    auto task = [&]() -> durable_task<> {
      static_cast<void>(co_await durable::completion<int>(
          [&](completer<int> done) { foreign.handed.set_value(std::move(done)); }));
    };
    rt.spawn(task());
    static_cast<void>(foreign.receive());
    // the runtime goes, with the task suspended in its completion
  }
  CHECK(foreign.held->cancelled());
  foreign.held->set_value(3);  // ASan would report a use of freed memory here
}
