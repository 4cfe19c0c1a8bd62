// The inject ring (detail/inject_queue.hpp) under threads that push and take at once: every
// handle comes out exactly once, and each pusher's in the order it pushed them. Bounded in
// count; no waiting in real time beyond a spin on a full or empty ring.
#include <catch2/catch.hpp>

#include <durable/detail/inject_queue.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

using durable::detail::inject_queue;

TEST_CASE("pushers and takers of the inject ring on several threads take every handle once, in each pusher's order",
          "[threads][queue]") {
  constexpr std::uintptr_t pushers = 3;
  constexpr std::uintptr_t per_pusher = 40'000;  // ~30 laps of the ring
  constexpr unsigned takers = 2;
  const auto ring = std::make_unique<inject_queue>();
  // A handle encodes its pusher and its sequence number within that pusher's pushes.
  auto encode = [](std::uintptr_t pusher, std::uintptr_t seq) {
    return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(((seq * pushers + pusher) + 1) * 16));
  };
  std::atomic<std::uintptr_t> taken_total{0};
  std::vector<std::vector<std::uintptr_t>> taken_by(takers);  // each taker's own, as raw numbers
  std::vector<std::thread> threads;
  for (std::uintptr_t p = 0; p < pushers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uintptr_t seq = 0; seq < per_pusher; ++seq) {
        while (!ring->push(encode(p, seq))) std::this_thread::yield();  // full: the takers catch up
      }
    });
  }
  for (unsigned t = 0; t < takers; ++t) {
    threads.emplace_back([&, t] {
      std::coroutine_handle<> out[16];
      while (taken_total.load(std::memory_order_relaxed) < pushers * per_pusher) {
        const std::size_t n = ring->take(out, 1 + t * 15);  // one at a time, and batches of 16
        for (std::size_t i = 0; i < n; ++i)
          taken_by[t].push_back(reinterpret_cast<std::uintptr_t>(out[i].address()) / 16 - 1);
        if (n == 0) std::this_thread::yield();
        taken_total.fetch_add(n, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : threads) th.join();

  std::vector<int> seen(pushers * per_pusher, 0);
  bool in_order = true;
  for (const auto& mine : taken_by) {
    // What one taker took of one pusher's handles comes in that pusher's order.
    std::vector<std::uintptr_t> last(pushers, 0);
    std::vector<bool> any(pushers, false);
    for (const std::uintptr_t v : mine) {
      ++seen[v];
      const std::uintptr_t pusher = v % pushers;
      const std::uintptr_t seq = v / pushers;
      if (any[pusher] && seq <= last[pusher]) in_order = false;
      any[pusher] = true;
      last[pusher] = seq;
    }
  }
  std::size_t once = 0;
  for (const int s : seen) once += s == 1 ? 1 : 0;
  CHECK(once == pushers * per_pusher);
  CHECK(in_order);
  CHECK(ring->empty());
}
