// What journaling adds to a call: an invocation of 100 sequential calls, run plainly (the
// baseline) and as a journaled invocation on the memory store, on a memory journal and on file
// journals. Each
// iteration is one invocation; `per_call` divides by the 100 calls.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/file_journal.hpp>
#include <durable/memory_store.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace {

constexpr int calls_per_invocation = 100;

inline constexpr durable::function step{"step", [](std::int64_t x) -> durable::durable_task<std::int64_t> {
                                          co_return x + 1;
                                        }};

inline constexpr durable::function flow{"flow", [](std::int64_t start) -> durable::durable_task<std::int64_t> {
                                          std::int64_t x = start;
                                          for (int i = 0; i < calls_per_invocation; ++i) x = co_await step(x);
                                          co_return x;
                                        }};

void report(benchmark::State& state) {
  state.counters["per_call"] = benchmark::Counter(static_cast<double>(state.iterations()) * calls_per_invocation,
                                                  benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void plain(benchmark::State& state) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::int64_t n = 0;
  for (auto _ : state) benchmark::DoNotOptimize(rt.run(flow(n++)));
  report(state);
}

template <class Store>
void journaled(benchmark::State& state, Store& store) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, store};
  journaled.register_function(step);
  journaled.register_function(flow);
  std::int64_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(journaled.start("i" + std::to_string(n), flow, n).get());
    ++n;
  }
  report(state);
}

void in_memory_store(benchmark::State& state) {
  durable::memory_store store;
  journaled(state, store);
}

void in_memory_journal(benchmark::State& state) {
  durable::memory_journal store;
  journaled(state, store);
}

void in_file(benchmark::State& state, durable::sync_mode mode) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("durable-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    durable::file_journal store(dir / "bench.journal", {.sync = mode});
    journaled(state, store);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

BENCHMARK(plain)->Name("journaled_call/baseline:unjournaled");
BENCHMARK(in_memory_store)->Name("journaled_call/durable:memory_store");
BENCHMARK(in_memory_journal)->Name("journaled_call/durable:memory_journal");
BENCHMARK_CAPTURE(in_file, none, durable::sync_mode::none)->Name("journaled_call/durable:file_journal_none");
BENCHMARK_CAPTURE(in_file, batched, durable::sync_mode::batched)
    ->Name("journaled_call/durable:file_journal_batched/real_time")
    ->UseRealTime()
    ->Iterations(20);

BENCHMARK_MAIN();
