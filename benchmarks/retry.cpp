// What one failed attempt and its immediate retry cost, against hand-written equivalents.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>

#include <chrono>
#include <coroutine>
#include <exception>
#include <functional>
#include <stdexcept>

#include "baseline_task.hpp"

using namespace std::chrono_literals;

namespace {

struct maintenance : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using errors = durable::error_table<durable::on<maintenance, durable::status::temporary_error>>;
using app_policy = durable::policy<errors>;
template <class T>
using task = durable::durable_task<T, app_policy>;

constexpr durable::retry_policy immediately{.initial_delay = 0ms, .jitter = durable::jitter::none};

[[gnu::noinline]] void fail_in_maintenance() { throw maintenance("in maintenance"); }

// Each benchmark iteration is one failed attempt followed by its retry: the loops below fail
// while the benchmark wants more iterations, then succeed once.

// ---- exception: hand-written try/catch retry loop ----
void exception_loop(benchmark::State& state) {
  for (;;) {
    try {
      if (state.KeepRunning()) fail_in_maintenance();
      break;
    } catch (const maintenance&) {
    }
  }
}

// ---- exception: the floor for a coroutine library: a bare coroutine that throws ----
struct bare {
  struct promise_type {
    std::exception_ptr error;
    bare get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };
  std::coroutine_handle<promise_type> handle;
};

bare bare_attempt(benchmark::State& state) {
  if (state.KeepRunning()) fail_in_maintenance();
  co_return;
}

void exception_bare_coroutine(benchmark::State& state) {
  for (;;) {
    bare attempt = bare_attempt(state);
    attempt.handle.resume();
    const bool failed = attempt.handle.promise().error != nullptr;
    attempt.handle.destroy();
    if (!failed) break;
  }
}

// ---- exception: one durable call whose attempts fail while the benchmark runs ----
inline constexpr durable::function flaky{"flaky",
                                         [](benchmark::State& state) -> task<int> {
                                           if (state.KeepRunning()) fail_in_maintenance();
                                           co_return 1;
                                         },
                                         immediately};

void exception_durable(benchmark::State& state) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  benchmark::DoNotOptimize(rt.run(flaky(std::ref(state))));
}

// ---- fail: co_yield durable::fail and an immediate retry, against a plain create+await ----
inline constexpr durable::function fails{
    "fails",
    [](benchmark::State& state) -> task<int> {
      if (state.KeepRunning()) co_yield durable::fail(durable::status::temporary_error, "not yet");
      co_return 1;
    },
    immediately};

void fail_durable(benchmark::State& state) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  benchmark::DoNotOptimize(rt.run(fails(std::ref(state))));
}

task<int> plain_leaf(int i) { co_return i; }

task<long> plain_driver(benchmark::State& state) {
  long sum = 0;
  int i = 0;
  for (auto _ : state) sum += co_await plain_leaf(++i);
  co_return sum;
}

void fail_baseline_plain_await(benchmark::State& state) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  benchmark::DoNotOptimize(rt.run(plain_driver(state)));
}

}  // namespace

BENCHMARK(exception_loop)->Name("exception_retry/baseline:try_catch_loop");
BENCHMARK(exception_bare_coroutine)->Name("exception_retry_floor/baseline:bare_coroutine");
BENCHMARK(exception_durable)->Name("exception_retry/durable:call");
BENCHMARK(exception_durable)->Name("exception_retry_floor/durable:call");
BENCHMARK(fail_baseline_plain_await)->Name("fail_retry/baseline:durable_create_await");
BENCHMARK(fail_durable)->Name("fail_retry/durable:fail_and_retry");

BENCHMARK_MAIN();
