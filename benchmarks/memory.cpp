// How many bytes a call costs while it waits for a retry, with a million of them pending,
// against the size of the user's own coroutine frame. Reported as counters.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/file_journal.hpp>

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <span>
#include <cstddef>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Bytes handed out by malloc, mmapped blocks included: glibc serves big blocks (the timer heap
// of a million entries) with mmap until its dynamic threshold rises, which would leave them out
// of `uordblks` in the first run only.
std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

template <class T>
using task = durable::durable_task<T>;

// A typical small body: one argument, one local, fails on its first attempt.
task<std::size_t> fetch(std::string key) {
  std::size_t length = key.size();
  co_yield durable::fail(durable::status::temporary_error, "not yet");
  co_return length;
}

inline constexpr durable::function fetch_later{
    "fetch_later", [](std::string key) -> task<std::size_t> { return fetch(std::move(key)); },
    {.initial_delay = 1h, .max_delay = 1h, .jitter = durable::jitter::none}};

task<int> nothing() { co_return 0; }

void pending_calls(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string key = "a-key-of-typical-size";  // fits the small-string buffer
  double per_call = 0;
  double user_frame = 0;
  for (auto _ : state) {
    {
      // The user's own frame: an attempt that has not started yet.
      const std::size_t before = heap_in_use();
      std::vector<task<std::size_t>> frames;
      frames.reserve(n);
      const std::size_t reserved = heap_in_use();
      for (std::size_t i = 0; i < n; ++i) frames.push_back(fetch(key));
      user_frame = static_cast<double>(heap_in_use() - reserved) / static_cast<double>(n);
      static_cast<void>(before);
    }
    {
      durable::manual_clock clock;
      durable::runtime rt{clock};
      const std::size_t before = heap_in_use();
      for (std::size_t i = 0; i < n; ++i) rt.spawn(fetch_later(key));
      rt.run(nothing());  // every spawned call runs its first attempt and waits for its retry
      per_call = static_cast<double>(heap_in_use() - before) / static_cast<double>(n);
    }  // destroying the runtime frees the pending calls
  }
  state.counters["bytes_per_pending_call"] = per_call;
  state.counters["user_frame_bytes"] = user_frame;
  state.counters["overhead_bytes"] = per_call - user_frame;
}

inline constexpr durable::function quick{"quick", [](int) -> task<int> { co_return 1; },
                                         {.attempt_timeout = 1h}};

task<void> one_long_sleep() { co_await durable::sleep_for(1min); }

// Calls with an attempt_timeout that end in time cancel their timeout. One timer due before
// them at the top of the heap (a minute's sleep; the clock does not move meanwhile) would keep
// every cancelled one behind it if nothing swept them:
// what a finished call leaves behind, after a million of them, should be nothing.
void finished_calls_with_timeout(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  double per_call = 0;
  std::size_t entries = 0;
  for (auto _ : state) {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    rt.spawn(one_long_sleep());
    auto warm_up = [](int count) -> task<int> {
      int sum = 0;
      for (int i = 0; i < count; ++i) sum += co_await quick(i);
      co_return sum;
    };
    benchmark::DoNotOptimize(rt.run(warm_up(1000)));  // pools and the heap reach their steady size
    const std::size_t before = heap_in_use();
    benchmark::DoNotOptimize(rt.run(warm_up(n)));
    per_call = (static_cast<double>(heap_in_use()) - static_cast<double>(before)) / n;
    entries = rt.timer_entries();
  }
  state.counters["bytes_per_finished_call"] = per_call;
  state.counters["timer_heap_entries"] = static_cast<double>(entries);
}

// A store that keeps nothing: what the runtime itself holds per finished invocation is measured,
// not the journal's copy of the records.
class discarding_journal final : public durable::journal {
 public:
  std::uint64_t append(std::uint8_t, std::span<const std::byte>) override { return ++last_; }
  void make_durable(std::uint64_t) override {}
  [[nodiscard]] std::vector<durable::journal_record> records() const override { return {}; }
  void compact(std::function<bool(const durable::journal_record&)>) override {}
  [[nodiscard]] std::uint64_t last_lsn() const override { return last_; }

 private:
  std::uint64_t last_ = 0;
};

inline constexpr durable::function step{"step", [](int i) -> task<int> { co_return i + 1; }};
inline constexpr durable::function three_steps{"three_steps", [](int i) -> task<int> {
  const int a = co_await step(i);
  const int b = co_await step(a);
  co_return co_await step(b);
}};

// What the invocations layer itself keeps of each finished invocation (an id of 13 characters,
// an int result), after 100,000 of them, over a journal that stores nothing: nothing, since a
// finished invocation is looked up in its store when asked for (start_up_memory measures what a
// journal store's index of them costs).
void finished_invocations(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  double per_invocation = 0;
  for (auto _ : state) {
    discarding_journal journal;
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, journal};
    journaled.register_function(step);
    journaled.register_function(three_steps);
    const std::size_t before = heap_in_use();
    for (int i = 0; i < n; ++i) {
      auto inv = journaled.start("order-" + std::to_string(1'000'000 + i), three_steps, i);  // 13 characters
      benchmark::DoNotOptimize(inv.get());
    }
    per_invocation = (static_cast<double>(heap_in_use()) - static_cast<double>(before)) / n;
  }
  state.counters["bytes_per_finished_invocation"] = per_invocation;
}

// What a program holds in memory once it has opened a file journal of `n` finished
// invocations (three steps each, condensed as automatic compaction leaves them) and of 100
// unfinished ones, and recovered: the unfinished invocations and an index of the finished ones
// (their outcomes stay in the file). Also reported: how long opening and recovering took.
void register_start_up_functions(durable::invocations& journaled) {
  journaled.register_function(step);
  journaled.register_function(three_steps);
  journaled.register_function(fetch_later);
}

void start_up_after_finished(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("durable-bench-start-up-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / "start-up.journal";
  {
    std::filesystem::remove(path);
    durable::file_journal journal(path, {.sync = durable::sync_mode::none});
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, journal};
    register_start_up_functions(journaled);
    for (int i = 0; i < n; ++i) {
      benchmark::DoNotOptimize(journaled.start("order-" + std::to_string(1'000'000 + i), three_steps, i).get());
    }
    for (int i = 0; i < 100; ++i) static_cast<void>(journaled.start("pending-" + std::to_string(i), fetch_later, "k"));
    rt.run(one_long_sleep());  // a minute: each pending one fails once and waits an hour for its retry
  }
  double held = 0;
  double seconds = 0;
  std::uint64_t file_bytes = 0;
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    const auto started = std::chrono::steady_clock::now();
    durable::file_journal journal(path, {.sync = durable::sync_mode::none});
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, journal};
    register_start_up_functions(journaled);
    journaled.recover();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    held = static_cast<double>(heap_in_use()) - static_cast<double>(before);
    file_bytes = std::filesystem::file_size(path);
    if (journaled.finished_invocations() != static_cast<std::size_t>(n)) state.SkipWithError("finished invocations lost");
  }
  std::filesystem::remove_all(dir);
  state.counters["bytes_held"] = held;
  state.counters["bytes_per_finished"] = held / n;
  state.counters["start_up_ms"] = seconds * 1000;
  state.counters["journal_file_bytes"] = static_cast<double>(file_bytes);
}

}  // namespace

BENCHMARK(start_up_after_finished)
    ->Name("start_up_memory/durable:hundred_thousand_finished")
    ->Arg(100'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK(finished_invocations)
    ->Name("finished_invocation_memory/durable:hundred_thousand")
    ->Arg(100'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK(finished_calls_with_timeout)
    ->Name("finished_call_memory/durable:one_million_with_attempt_timeout")
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK(pending_calls)
    ->Name("pending_call_memory/durable:one_million_waiting")
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
