// Event callbacks on worker threads: registering one while others are being delivered.
// Assertions stay on the test thread; what callbacks touch is atomic.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>

using durable::durable_task;
using durable::event_kind;
using durable::status;

TEST_CASE("callbacks registered while workers deliver events, even by a callback, all receive later events",
          "[threads][events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  constexpr int calls = 400;
  constexpr int registrations = 50;
  std::atomic<int> registered{0};
  std::atomic<int> delivered_to_added{0};
  // Each of the first `registrations` events seen registers one more callback, from a worker.
  rt.on_event([&](const durable::event&) {
    if (registered.fetch_add(1) < registrations) {
      rt.on_event([&delivered_to_added](const durable::event&) { delivered_to_added.fetch_add(1); });
    }
  });
  const durable::function once{"once",
                               [](int) -> durable_task<int> {
                                 co_yield durable::fail(status::temporary_error, "once", std::chrono::milliseconds(1));
                                 co_return 0;
                               },
                               {.max_attempts = 1}};
  for (int i = 0; i < calls; ++i) rt.spawn(once(i));
  rt.run_until_idle();
  // Every call emits attempt_started, attempt_failed and failed: 3 x calls events in all.
  CHECK(registered.load() == 3 * calls);
  // Each added callback saw at least the events after it was added (the last was added at the
  // 50th event, so the 3 x calls - 50 events after it at least reached all 50).
  CHECK(delivered_to_added.load() >= registrations * (3 * calls - registrations));
}
