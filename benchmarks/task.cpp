// What creating and awaiting a task costs, against a minimal hand-written lazy task.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>

#include "baseline_task.hpp"

namespace {

using global_new_policy = durable::policy<durable::frames<durable::frame_allocation::global_new>>;

template <class Policy>
durable::durable_task<int, Policy> durable_leaf(int i) {
  co_return i;
}

template <class Policy>
durable::durable_task<long, Policy> durable_driver(benchmark::State& state) {
  long sum = 0;
  int i = 0;
  for (auto _ : state) sum += co_await durable_leaf<Policy>(++i);
  co_return sum;
}

baseline::task<int> baseline_leaf(int i) { co_return i; }

baseline::task<long> baseline_driver(benchmark::State& state) {
  long sum = 0;
  int i = 0;
  for (auto _ : state) sum += co_await baseline_leaf(++i);
  co_return sum;
}

void create_await_baseline(benchmark::State& state) {
  benchmark::DoNotOptimize(baseline_driver(state).run());
}

void create_await_durable_global_new(benchmark::State& state) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  benchmark::DoNotOptimize(rt.run(durable_driver<global_new_policy>(state)));
}

void create_await_durable_recycled(benchmark::State& state) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  benchmark::DoNotOptimize(rt.run(durable_driver<durable::default_policy>(state)));
}

}  // namespace

BENCHMARK(create_await_baseline)->Name("create_await/baseline:minimal_lazy_task");
BENCHMARK(create_await_durable_global_new)->Name("create_await/durable:global_new_frames");
BENCHMARK(create_await_durable_recycled)->Name("create_await/durable:recycled_frames");

BENCHMARK_MAIN();
