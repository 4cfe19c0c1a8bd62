// Work stealing (issue #18): work a task posts on a worker goes to that worker's own queue, and
// idle workers steal it; cancellation and shutdown keep their meaning while tasks move between
// threads. Bounded in count and in time; assertions stay on the test thread.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using durable::durable_task;
using durable::status;

namespace {

// Counts the frames of the tasks below that exist: none may be left, or destroyed twice, once
// their runtime is gone.
struct frame_count {
  static inline std::atomic<int> live{0};
  frame_count() noexcept { live.fetch_add(1, std::memory_order_relaxed); }
  frame_count(const frame_count&) = delete;
  ~frame_count() { live.fetch_sub(1, std::memory_order_relaxed); }
};

// Waits (spinning, bounded) until `ready` is true; false if 30 s went by first.
bool spin_until(const std::atomic<bool>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!ready.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Failed tries of `retrying` so far, in every test.
std::atomic<int> retried_tries{0};

// A call that fails two tries in three (counted per thread) and retries after a few
// microseconds of real time: timers that come due while other work runs.
const durable::function retrying{"retrying",
                                 [](int k) -> durable_task<int> {
                                   const frame_count counted;
                                   thread_local int tries = 0;
                                   if (++tries % 3 != 0) {
                                     retried_tries.fetch_add(1, std::memory_order_relaxed);
                                     co_yield durable::fail(status::temporary_error, "again",
                                                            std::chrono::microseconds(k % 7));
                                   }
                                   co_return k;
                                 },
                                 {.initial_delay = 1us, .max_delay = 20us}};

}  // namespace

TEST_CASE("tasks spawned on a busy worker are stolen by an idle one", "[threads][workers][stealing]") {
  durable::runtime rt{{.workers = 2}};
  const std::thread::id test_thread = std::this_thread::get_id();
  std::atomic<bool> stolen{false};
  std::atomic<bool> spawner_waited{false};
  std::thread::id spawner_thread;
  auto child = [&](std::thread::id spawner) -> durable_task<> {
    if (std::this_thread::get_id() != spawner) stolen.store(true, std::memory_order_release);
    co_return;
  };
  // The spawner's children wait in its worker's own queue while it blocks: only the other
  // worker, by stealing, can run them.
  auto spawner = [&]() -> durable_task<> {
    spawner_thread = std::this_thread::get_id();
    for (int i = 0; i < 64; ++i) rt.spawn(child(spawner_thread));
    spawner_waited.store(spin_until(stolen), std::memory_order_release);
    co_return;
  };
  rt.spawn(spawner());
  rt.run_until_idle();
  CHECK(spawner_waited.load());
  CHECK(stolen.load());
  CHECK(spawner_thread != test_thread);
}

TEST_CASE("every task of a spawn tree runs exactly once on four workers", "[threads][workers][stealing]") {
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 4}};
  constexpr std::size_t leaves = 4096;
  std::vector<std::atomic<int>> runs(leaves);
  std::mutex threads_mutex;
  std::set<std::thread::id> threads;
  // Each node spawns two halves until a range is one leaf, so work is posted on whichever
  // worker runs the node, and the others must steal to get any.
  struct tree {
    durable::runtime& rt;
    std::vector<std::atomic<int>>& runs;
    std::mutex& threads_mutex;
    std::set<std::thread::id>& threads;
    durable_task<> node(std::size_t first, std::size_t count) {
      if (count == 1) {
        runs[first].fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(threads_mutex);
        threads.insert(std::this_thread::get_id());
        co_return;
      }
      rt.spawn(node(first, count / 2));
      rt.spawn(node(first + count / 2, count - count / 2));
    }
  } t{rt, runs, threads_mutex, threads};
  rt.spawn(t.node(0, leaves));
  rt.run_until_idle();
  std::size_t once = 0;
  for (const auto& r : runs) once += r.load() == 1 ? 1 : 0;
  CHECK(once == leaves);
  CHECK(!threads.empty());
}

TEST_CASE("cancelled and retrying tasks on stealing workers end once, and shutdown frees what is left",
          "[threads][workers][stealing][cancellation][shutdown]") {
  // Rounds of: a runtime with more workers than cores; tasks that fan out, retry after a few
  // microseconds of real time (timers), or wait until cancelled; stop requests from the test
  // thread at random moments; and the runtime destroyed while much of it is still running.
  std::mt19937 random(12345);
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    std::atomic<int> finished{0};
    std::atomic<int> cancelled{0};
    std::vector<std::stop_source> stops(64);
    {
      durable::runtime rt{{.seed = static_cast<std::uint64_t>(round), .workers = 3}};
      auto worker_task = [&](int k) -> durable_task<> {
        const frame_count counted;
        try {
          std::vector<durable_task<int>> children;
          for (int c = 0; c < 4; ++c) children.push_back(retrying(k * 4 + c));
          static_cast<void>(co_await durable::gather(std::move(children)));
          if (k % 4 == 0) co_await durable::sleep_for(24h);  // ends only by cancellation or shutdown
          finished.fetch_add(1, std::memory_order_relaxed);
        } catch (const durable::failure& f) {
          if (f.reason() == durable::failure_reason::cancelled) cancelled.fetch_add(1, std::memory_order_relaxed);
        }
      };
      for (int k = 0; k < 64; ++k) rt.spawn(worker_task(k), stops[static_cast<std::size_t>(k)].get_token());
      // Stop some while they run, in a random order; then let the runtime go with the rest.
      std::vector<int> order(64);
      for (int k = 0; k < 64; ++k) order[static_cast<std::size_t>(k)] = k;
      std::shuffle(order.begin(), order.end(), random);
      const std::size_t to_stop = std::uniform_int_distribution<std::size_t>(0, 64)(random);
      for (std::size_t i = 0; i < to_stop; ++i) {
        stops[static_cast<std::size_t>(order[i])].request_stop();
        if (i % 8 == 0) std::this_thread::yield();
      }
    }  // the destructor stops the workers and destroys every task still suspended
    CHECK(frame_count::live.load() == 0);
    CHECK(finished.load() + cancelled.load() <= 64);
  }
}

TEST_CASE("a worker asleep wakes for work posted from outside, one worker at a time", "[threads][workers][stealing]") {
  // Waves of one task each, from the test thread, with everything asleep in between: each wave
  // must wake a worker (no lost wake-up), and run_until_idle must see the end of each.
  durable::runtime rt{{.workers = 3}};
  std::atomic<int> ran{0};
  auto one = [&]() -> durable_task<> {
    ran.fetch_add(1, std::memory_order_relaxed);
    co_return;
  };
  for (int wave = 1; wave <= 200; ++wave) {
    rt.spawn(one());
    rt.run_until_idle();
    REQUIRE(ran.load() == wave);
  }
}

TEST_CASE("a timer scheduled on a worker that then blocks fires on another worker", "[threads][workers][stealing][timers]") {
  // A task spawns a blocker into its worker's own queue, then sleeps: its timer goes into that
  // worker's heap, and the worker runs the blocker next, which holds it until the sleeper woke.
  // Only the other worker can fire the timer. (Due 1 ns later: nothing waits in real time. The
  // blocker may be stolen before it runs there, which proves nothing; rounds go on until it
  // ran on the sleeper's worker five times, or 200 rounds.)
  durable::runtime rt{{.workers = 2}};
  int blocked_rounds = 0;
  int rounds = 0;
  for (; rounds < 200 && blocked_rounds < 5; ++rounds) {
    std::atomic<bool> woke{false};
    std::atomic<bool> blocked{false};
    std::atomic<bool> woke_while_blocked{false};
    std::thread::id slept_on;
    auto blocker = [&](std::thread::id sleeper_thread) -> durable_task<> {
      if (std::this_thread::get_id() != sleeper_thread) co_return;
      blocked.store(true, std::memory_order_relaxed);
      woke_while_blocked.store(spin_until(woke), std::memory_order_relaxed);
    };
    auto sleeper = [&]() -> durable_task<> {
      slept_on = std::this_thread::get_id();
      rt.spawn(blocker(slept_on));
      co_await durable::sleep_for(1ns);
      woke.store(true, std::memory_order_release);
    };
    rt.spawn(sleeper());
    rt.run_until_idle();
    REQUIRE(woke.load());
    if (blocked.load()) {
      ++blocked_rounds;
      CHECK(woke_while_blocked.load());
    }
  }
  INFO("rounds run: " << rounds);
  CHECK(blocked_rounds == 5);
}

TEST_CASE("retrying and sleeping tasks without a stop token on stealing workers all finish, or are freed at shutdown",
          "[threads][workers][stealing][timers][shutdown]") {
  // Timers that nothing can cancel live in the heap of the worker that scheduled them. Rounds
  // of: tasks whose calls retry after a few microseconds of real time, on more workers than
  // cores, some then sleeping for a day; the runtime destroyed while those still wait and while
  // others still retry. Every frame must be freed exactly once.
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    std::atomic<int> finished{0};
    const int retried_before = retried_tries.load();
    std::atomic<int> sleeping{0};
    {
      durable::runtime rt{{.seed = static_cast<std::uint64_t>(round), .workers = 3}};
      auto worker_task = [&](int k) -> durable_task<> {
        const frame_count counted;
        std::vector<durable_task<int>> children;
        for (int c = 0; c < 4; ++c) children.push_back(retrying(k * 4 + c));
        static_cast<void>(co_await durable::gather(std::move(children)));
        if (k % 4 == 0) {
          sleeping.fetch_add(1, std::memory_order_relaxed);
          co_await durable::sleep_for(24h);  // ends only at shutdown
        }
        finished.fetch_add(1, std::memory_order_relaxed);
      };
      for (int k = 0; k < 64; ++k) rt.spawn(worker_task(k));
      if (round % 2 == 0) {
        // Let everything that can finish do so: run_until_idle would wait for the day-long sleeps.
        // Once every call succeeded, the heaps hold the 16 day-long sleeps and nothing else.
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while ((finished.load() < 48 || sleeping.load() < 16 || rt.timer_entries() != 16) &&
               std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
        CHECK(finished.load() == 48);
        CHECK(sleeping.load() == 16);
        CHECK(rt.timer_entries() == 16);
        CHECK(retried_tries.load() > retried_before);  // the calls went through their retry timers
      }
    }  // the destructor stops the workers and destroys every task still suspended
    CHECK(frame_count::live.load() == 0);
    CHECK(finished.load() <= 48);
  }
}

TEST_CASE("a burst of timers due at once, more than half a worker's queue holds, all fire on stealing workers",
          "[threads][workers][stealing][timers]") {
  // A worker fires at most what leaves its queue half full per look (2,048 of 4,096 slots); the
  // rest stay due in their heap for the next look. 6,000 sleeps of one second, scheduled on the
  // workers of a manual clock, come due in the same instant when the last worker to go to sleep
  // jumps the clock: every one must still fire, once, and the clock move exactly one second.
  durable::manual_clock clock;
  durable::runtime rt{clock, {.workers = 2}};
  constexpr int sleepers = 6000;
  std::atomic<int> woke{0};
  auto sleeper = [&]() -> durable_task<> {
    co_await durable::sleep_for(1s);
    woke.fetch_add(1, std::memory_order_relaxed);
  };
  // Spawned from a task, so each sleep is scheduled on a worker, into that worker's own heap.
  auto seed = [&]() -> durable_task<> {
    for (int i = 0; i < sleepers; ++i) rt.spawn(sleeper());
    co_return;
  };
  const auto start = clock.now();
  rt.spawn(seed());
  rt.run_until_idle();
  CHECK(woke.load() == sleepers);
  CHECK(rt.timer_entries() == 0);
  CHECK(clock.now() - start == 1s);
}

TEST_CASE("spawns from several threads outside the runtime, more than its ring of posts holds, each run once",
          "[threads][workers][stealing]") {
  // Posts from threads that are not workers go into a ring of 4,096 without the runtime's lock,
  // and into the shared queue once it is full. Both workers are held in a gate while four
  // threads spawn 3,000 tasks each, so the ring fills and the rest overflow; once the gate
  // opens, every task must run exactly once, from both places.
  durable::runtime rt{{.workers = 2}};
  constexpr int spawners = 4;
  constexpr int per_spawner = 3000;
  std::vector<std::atomic<int>> runs(spawners * per_spawner);
  std::atomic<int> in_gate{0};
  std::atomic<bool> open{false};
  std::atomic<bool> gate_waited{true};
  auto gate = [&]() -> durable_task<> {
    in_gate.fetch_add(1, std::memory_order_acq_rel);
    if (!spin_until(open)) gate_waited.store(false, std::memory_order_relaxed);
    co_return;
  };
  auto task = [&](int k) -> durable_task<> {
    runs[static_cast<std::size_t>(k)].fetch_add(1, std::memory_order_relaxed);
    co_return;
  };
  // One gate holds one worker: the second is left for the other worker to take.
  rt.spawn(gate());
  rt.spawn(gate());
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (in_gate.load(std::memory_order_acquire) < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  REQUIRE(in_gate.load() == 2);
  std::vector<std::thread> threads;
  for (int t = 0; t < spawners; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_spawner; ++i) rt.spawn(task(t * per_spawner + i));
    });
  }
  for (auto& th : threads) th.join();
  open.store(true, std::memory_order_release);
  rt.run_until_idle();
  std::size_t once = 0;
  for (const auto& r : runs) once += r.load() == 1 ? 1 : 0;
  CHECK(once == runs.size());
  CHECK(gate_waited.load());
}
