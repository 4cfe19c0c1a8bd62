// What creating and awaiting a task costs, against a minimal hand-written lazy task (frames
// from the global allocator, like durable's global_new policy) and the same task with a minimal
// per-thread free list (the floor for durable's recycled frames).
//
// `bench_task --awaits=<variant>:<n>` runs exactly n create+awaits of one variant and no
// benchmark, for instruction counts (benchmarks/instructions_per_await).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <durable/durable.hpp>

#include "baseline_task.hpp"

namespace {

using global_new_policy = durable::policy<durable::frames<durable::frame_allocation::global_new>>;

// The loop of the counted mode: `for (auto _ : loop)` as over a benchmark::State, n times.
struct counted_loop {
  struct tick {};
  struct iterator {
    long left;
    bool operator!=(const iterator& end) const noexcept { return left != end.left; }
    void operator++() noexcept { --left; }
    tick operator*() const noexcept { return {}; }
  };
  long n;
  iterator begin() const noexcept { return {n}; }
  iterator end() const noexcept { return {0}; }
};

template <class Policy>
durable::durable_task<int, Policy> durable_leaf(int i) {
  co_return i;
}

template <class Policy, class Loop>
durable::durable_task<long, Policy> durable_driver(Loop& loop) {
  long sum = 0;
  int i = 0;
  for ([[maybe_unused]] auto _ : loop) sum += co_await durable_leaf<Policy>(++i);
  co_return sum;
}

template <class Frames>
baseline::task<int, Frames> baseline_leaf(int i) {
  co_return i;
}

template <class Frames, class Loop>
baseline::task<long, Frames> baseline_driver(Loop& loop) {
  long sum = 0;
  int i = 0;
  for ([[maybe_unused]] auto _ : loop) sum += co_await baseline_leaf<Frames>(++i);
  co_return sum;
}

template <class Frames, class Loop>
long run_baseline(Loop& loop) {
  return baseline_driver<Frames>(loop).run();
}

template <class Policy, class Loop>
long run_durable(Loop& loop) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  return rt.run(durable_driver<Policy>(loop));
}

void create_await_baseline(benchmark::State& state) {
  benchmark::DoNotOptimize(run_baseline<baseline::global_frames>(state));
}

void create_await_baseline_free_list(benchmark::State& state) {
  benchmark::DoNotOptimize(run_baseline<baseline::free_list_frames>(state));
}

void create_await_durable_global_new(benchmark::State& state) {
  benchmark::DoNotOptimize(run_durable<global_new_policy>(state));
}

void create_await_durable_recycled(benchmark::State& state) {
  benchmark::DoNotOptimize(run_durable<durable::default_policy>(state));
}

// `--awaits=<variant>:<n>`: runs n create+awaits of the variant; false for an unknown one.
bool run_counted(std::string_view spec) {
  const std::size_t colon = spec.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view variant = spec.substr(0, colon);
  counted_loop loop{std::atol(spec.substr(colon + 1).data())};
  long sum = 0;
  if (variant == "minimal_lazy_task") {
    sum = run_baseline<baseline::global_frames>(loop);
  } else if (variant == "free_list_task") {
    sum = run_baseline<baseline::free_list_frames>(loop);
  } else if (variant == "global_new_frames") {
    sum = run_durable<global_new_policy>(loop);
  } else if (variant == "recycled_frames") {
    sum = run_durable<durable::default_policy>(loop);
  } else {
    return false;
  }
  benchmark::DoNotOptimize(sum);
  return true;
}

}  // namespace

BENCHMARK(create_await_baseline)->Name("create_await/baseline:minimal_lazy_task");
BENCHMARK(create_await_baseline_free_list)->Name("create_await/baseline:free_list_task");
BENCHMARK(create_await_durable_global_new)->Name("create_await/durable:global_new_frames");
BENCHMARK(create_await_durable_recycled)->Name("create_await/durable:recycled_frames");

int main(int argc, char** argv) {
  constexpr std::string_view awaits_flag = "--awaits=";
  if (argc == 2 && std::string_view(argv[1]).starts_with(awaits_flag)) {
    if (run_counted(std::string_view(argv[1]).substr(awaits_flag.size()))) return 0;
    std::fprintf(stderr,
                 "usage: %s --awaits=<minimal_lazy_task|free_list_task|global_new_frames|recycled_frames>:<n>\n",
                 argv[0]);
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
