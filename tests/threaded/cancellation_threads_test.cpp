// Cancellation, attempt timeouts and fan-outs on worker threads (run under ThreadSanitizer in CI).
// Assertions stay on the test thread; what workers touch is atomic or published by run/join.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <stop_token>
#include <thread>
#include <vector>

#include "../support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::failure_reason;
using durable::status;
using test_support::gate;
using test_support::tracked;

TEST_CASE("a stop from another thread ends many calls waiting for retries on two workers",
          "[threads][cancel]") {
  // The real clock: the hour of backoff never passes, so only the stop can end the calls.
  durable::runtime rt{{.workers = 2}};
  constexpr int calls = 500;
  std::atomic<int> attempts{0};
  std::atomic<int> failed{0};
  std::atomic<int> retries_scheduled{0};
  rt.on_event([&](const durable::event& e) {
    if (e.kind == event_kind::failed) ++failed;
    if (e.kind == event_kind::retry_scheduled) ++retries_scheduled;
  });
  const durable::function flaky{"flaky",
                                [&attempts]() -> durable_task<> {
                                  ++attempts;
                                  co_yield durable::fail(status::temporary_error, "later");
                                },
                                {.initial_delay = 1h, .max_delay = 2h, .jitter = durable::jitter::none}};
  std::stop_source source;
  auto all_waiting = [&]() -> durable_task<> {
    while (retries_scheduled.load() < calls) co_await durable::sleep_for(0s);
  };
  for (int i = 0; i < calls; ++i) rt.spawn(flaky(), source.get_token());
  rt.run(all_waiting());
  source.request_stop();  // from the test thread, while the workers may be running
  rt.run_until_idle();
  CHECK(failed == calls);
  CHECK(attempts == calls);
}

TEST_CASE("gather runs its children in parallel on two workers", "[threads][fan_out]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  std::atomic<int> arrived{0};
  // Each child waits (without suspending) until the other has started: only possible if both
  // run at the same time, on different workers. Bounded, so a failure cannot hang the suite.
  auto meet = [&arrived]() -> durable_task<bool> {
    ++arrived;
    for (int spins = 0; arrived.load() < 2 && spins < 50'000'000; ++spins) std::this_thread::yield();
    co_return arrived.load() == 2;
  };
  auto body = [&]() -> durable_task<bool> {
    auto both = durable::gather(meet(), meet());
    const auto [a, b] = co_await both;
    co_return a && b;
  };
  CHECK(rt.run(body()));
}

TEST_CASE("attempt timeouts racing attempts that finish at the same instant stay consistent",
          "[threads][attempt_timeout]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  constexpr int calls = 300;
  std::atomic<int> live{0};
  std::atomic<int> succeeded{0};
  rt.on_event([&succeeded](const durable::event& e) {
    if (e.kind == event_kind::succeeded) ++succeeded;
  });
  // Each attempt sleeps exactly as long as its timeout: delivery and timeout race on the workers.
  const durable::function edge{"edge",
                               [&live](int attempt_sleep_ms) -> durable_task<int> {
                                 tracked guard(live);
                                 co_await durable::sleep_for(std::chrono::milliseconds(attempt_sleep_ms));
                                 co_return 1;
                               },
                               {.initial_delay = 1ms, .max_attempts = 3, .attempt_timeout = 5ms}};
  for (int i = 0; i < calls; ++i) rt.spawn(edge(i % 2 == 0 ? 5 : 1));
  rt.run_until_idle();
  CHECK(live == 0);
  CHECK(succeeded >= calls / 2);  // the 1 ms sleepers always finish in time
}

TEST_CASE("a foreign awaitable resumed on another thread after its attempt timed out is discarded safely",
          "[threads][attempt_timeout][foreign]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  constexpr int calls = 50;
  std::vector<gate> sockets(calls);
  std::atomic<int> live{0};
  const durable::function read{"read",
                               [&](int i) -> durable_task<int> {
                                 tracked guard(live);
                                 co_await sockets[static_cast<std::size_t>(i)].wait();
                                 co_return i;
                               },
                               {.max_attempts = 1, .attempt_timeout = 1s}};
  std::atomic<int> timed_out{0};
  auto one = [&](int i) -> durable_task<> {
    try {
      co_await read(i);
    } catch (const durable::failure& f) {
      if (f.code() == status::timeout) ++timed_out;
    }
  };
  for (int i = 0; i < calls; ++i) rt.spawn(one(i));
  rt.run_until_idle();
  CHECK(timed_out == calls);
  std::thread opener([&sockets] {
    for (auto& s : sockets) s.open();
  });
  opener.join();
  rt.run_until_idle();
  CHECK(live == 0);
}

TEST_CASE("destroying a runtime with workers and pending calls joins them and frees everything",
          "[threads][shutdown]") {
  std::atomic<int> live{0};
  {
    // The real clock: the hour never passes. (On a manual clock, the workers going idle while
    // this thread is still spawning would jump the clock, and the sleepers would end early.)
    durable::runtime rt{{.workers = 2}};
    const durable::function sleeping{"sleeping", [&live]() -> durable_task<> {
                                       tracked guard(live);
                                       co_await durable::sleep_for(1h);
                                     }};
    for (int i = 0; i < 100; ++i) rt.spawn(sleeping());
    auto started = [&live]() -> durable_task<> {
      while (live.load() < 100) co_await durable::sleep_for(0s);
    };
    rt.run(started());
  }
  CHECK(live == 0);
}
