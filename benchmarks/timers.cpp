// What scheduling and firing timers costs on a runtime (manual clock), against a bare
// std::priority_queue loop that resumes the same coroutines in time order.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <vector>

namespace {

// A coroutine that counts its resumptions and suspends again: resumable any number of times.
struct ticker {
  struct promise_type {
    ticker get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {}
  };
  std::coroutine_handle<promise_type> handle;
};

ticker tick_forever(std::uint64_t& ticks) {
  for (;;) {
    ++ticks;
    co_await std::suspend_always{};
  }
}

struct fixture {
  std::uint64_t ticks = 0;
  std::vector<std::coroutine_handle<>> coroutines;
  std::vector<std::chrono::nanoseconds> delays;

  explicit fixture(std::size_t n) {
    std::mt19937_64 rng(1);
    for (std::size_t i = 0; i < n; ++i) {
      coroutines.push_back(tick_forever(ticks).handle);
      delays.emplace_back(static_cast<std::int64_t>(rng() % 1'000'000'000));
    }
  }
  ~fixture() {
    for (auto h : coroutines) h.destroy();
  }
};

void timers_baseline(benchmark::State& state) {
  fixture f(static_cast<std::size_t>(state.range(0)));
  struct entry {
    std::int64_t when;
    std::uint64_t seq;
    std::coroutine_handle<> handle;
    bool operator>(const entry& o) const noexcept { return when != o.when ? when > o.when : seq > o.seq; }
  };
  std::int64_t now = 0;
  std::priority_queue<entry, std::vector<entry>, std::greater<>> queue;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < f.coroutines.size(); ++i) {
      queue.push({now + f.delays[i].count(), seq++, f.coroutines[i]});
    }
    while (!queue.empty()) {
      const entry e = queue.top();
      queue.pop();
      now = e.when;
      e.handle.resume();
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["resumes_per_timer"] =
      static_cast<double>(f.ticks - f.coroutines.size()) / static_cast<double>(state.iterations() * state.range(0));
}

void timers_durable(benchmark::State& state) {
  fixture f(static_cast<std::size_t>(state.range(0)));
  durable::manual_clock clock;
  durable::runtime rt{clock};
  for (auto _ : state) {
    const durable::time_point now = clock.now();
    for (std::size_t i = 0; i < f.coroutines.size(); ++i) rt.schedule_at(now + f.delays[i], f.coroutines[i]);
    rt.run_until_idle();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["resumes_per_timer"] =
      static_cast<double>(f.ticks - f.coroutines.size()) / static_cast<double>(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(timers_baseline)->Name("timers/baseline:priority_queue")->Arg(10'000);
BENCHMARK(timers_durable)->Name("timers/durable:runtime_manual_clock")->Arg(10'000);

BENCHMARK_MAIN();
