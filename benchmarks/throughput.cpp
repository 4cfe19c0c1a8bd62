// Throughput (issue #6): 100,000 concurrent calls, each failing once and then succeeding, on a
// runtime with 1 and 2 worker threads on the real clock, against the same work done by
// `std::function` jobs on a plain hand-written thread pool. One iteration runs all 100,000
// calls to the end; `calls_per_s` is calls completed per second of wall-clock time.
//
// Two ways to fail: `throughput/` fails by returning (`co_yield durable::fail` against a job
// that returns a failure code), `throughput_throw/` by throwing an exception that is caught
// (classified by the runtime against a plain try/catch in the job). Either way the retry is
// immediate: the pool's job posts itself again; a durable call runs its second try at once, as
// the runtime does for zero-delay retries (only every 16th in a row goes through its queue).
//
// The work runs on other threads, so the benchmarks use real time (`/real_time`), and so does
// the ratio that scripts/bench-report computes for them.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t call_count = 100'000;

struct maintenance : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- what both sides share: the per-call state and the work of one try ----

// The calls of one benchmark. `failed_in[i]` is the iteration (generation) in which call i
// last failed: a call's first try in an iteration finds an older generation, records the
// current one and fails; its retry finds the current one and succeeds. So nothing is reset
// between iterations, and both sides run exactly this code. The slots are plain integers on
// both sides: each is touched only by the two tries of its own call, which the queue hand-off
// between them orders (the pool's mutex; the runtime's queues), so a build with
// -fsanitize=thread would report a hand-off that fails to. `generation` is written by the
// benchmark's thread only between iterations, while nothing runs.
struct calls {
  std::vector<std::uint32_t> failed_in = std::vector<std::uint32_t>(call_count, 0);
  std::uint32_t generation = 0;
  std::atomic<std::uint32_t> completed{0};

  void start_iteration() noexcept {
    ++generation;
    completed.store(0, std::memory_order_relaxed);
  }
};

// One try of call i: false the first time in this iteration ("failed"), true after.
bool try_once(calls& c, std::uint32_t i) noexcept {
  if (c.failed_in[i] == c.generation) return true;
  c.failed_in[i] = c.generation;
  return false;
}

// The same, failing by exception.
[[gnu::noinline]] void try_once_or_throw(calls& c, std::uint32_t i) {
  if (!try_once(c, i)) throw maintenance("in maintenance");
}

void check_completed(benchmark::State& state, const calls& c) {
  if (c.completed.load(std::memory_order_relaxed) != call_count) state.SkipWithError("not every call completed");
}

void report(benchmark::State& state) {
  // A rate counter divides by the benchmark's time, which is real time here (UseRealTime).
  state.counters["calls_per_s"] = benchmark::Counter(call_count, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- baseline: a plain thread pool running std::function jobs ----

// N threads and one mutex + condition variable queue of std::function<void()> jobs: what one
// writes by hand. `wait_idle` waits until the queue is empty and no job is running (a job that
// re-posts itself does so before it ends, so the pool never looks idle in between), like
// `runtime::run_until_idle`.
class thread_pool {
 public:
  explicit thread_pool(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  void wait_idle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return jobs_.empty() && running_ == 0; });
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
      lock.unlock();
      job();
      job = nullptr;  // destroyed outside the lock
      lock.lock();
      --running_;
      if (running_ == 0 && jobs_.empty()) idle_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> jobs_;
  unsigned running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started after every other member exists
};

struct pool_work {
  thread_pool& pool;
  calls& c;
};

// One try of call i as a pool job, with the hand-written retry: a failed try posts the call
// again (a plain pool has only its shared queue), the successful one counts it. The job captures a pointer and an index: 16 bytes, trivially copyable, so it fits
// std::function's small buffer in libstdc++ and posting a job allocates nothing but the
// queue's own blocks.
template <bool Throw>
void pool_try(const pool_work* w, std::uint32_t i) {
  if constexpr (Throw) {
    try {
      try_once_or_throw(w->c, i);
    } catch (const maintenance&) {
      w->pool.post([w, i] { pool_try<Throw>(w, i); });
      return;
    }
  } else {
    if (!try_once(w->c, i)) {
      w->pool.post([w, i] { pool_try<Throw>(w, i); });
      return;
    }
  }
  w->c.completed.fetch_add(1, std::memory_order_relaxed);
}

template <bool Throw, unsigned Workers>
void baseline_pool(benchmark::State& state) {
  calls c;
  thread_pool pool(Workers);
  const pool_work w{pool, c};
  for (auto _ : state) {
    c.start_iteration();
    for (std::uint32_t i = 0; i < call_count; ++i) pool.post([p = &w, i] { pool_try<Throw>(p, i); });
    pool.wait_idle();
    check_completed(state, c);
  }
  report(state);
}

// ---- durable: spawned durable calls on a runtime with N workers ----

using errors = durable::error_table<durable::on<maintenance, durable::status::temporary_error>>;
template <class T = void>
using task = durable::durable_task<T, durable::policy<errors>>;

// Immediate retries: the `fail` below also says so with its zero retry-after hint; an
// exception carries no hint, so the policy's own delay must be zero (without jitter, which
// would draw from the runtime's generator under its lock).
constexpr durable::retry_policy immediately{.initial_delay = 0ms, .jitter = durable::jitter::none};

// The arguments are a pointer and an index, as for the pool's jobs; each attempt gets its own
// copy of them (the per-call state lives in `calls`, outside the arguments).
inline constexpr durable::function flaky_fail{
    "flaky_fail",
    [](calls* c, std::uint32_t i) -> task<> {
      if (!try_once(*c, i)) co_yield durable::fail(durable::status::temporary_error, "not yet", 0ms);
      c->completed.fetch_add(1, std::memory_order_relaxed);
    },
    immediately};

inline constexpr durable::function flaky_throw{"flaky_throw",
                                               [](calls* c, std::uint32_t i) -> task<> {
                                                 try_once_or_throw(*c, i);
                                                 c->completed.fetch_add(1, std::memory_order_relaxed);
                                                 co_return;
                                               },
                                               immediately};

template <bool Throw, unsigned Workers>
void durable_runtime(benchmark::State& state) {
  calls c;
  durable::runtime rt{durable::runtime_options{.seed = 1, .workers = Workers}};
  for (auto _ : state) {
    c.start_iteration();
    for (std::uint32_t i = 0; i < call_count; ++i) {
      if constexpr (Throw) {
        rt.spawn(flaky_throw(&c, i));
      } else {
        rt.spawn(flaky_fail(&c, i));
      }
    }
    rt.run_until_idle();
    check_completed(state, c);
  }
  report(state);
}

}  // namespace

// One iteration is 100,000 calls (tens of milliseconds), so the default minimum time runs a
// handful of iterations, and --benchmark_min_time=0.001 runs one of each.
BENCHMARK_TEMPLATE(baseline_pool, false, 1)
    ->Name("throughput/baseline:workers=1")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(durable_runtime, false, 1)
    ->Name("throughput/durable:workers=1")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(baseline_pool, false, 2)
    ->Name("throughput/baseline:workers=2")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(durable_runtime, false, 2)
    ->Name("throughput/durable:workers=2")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(baseline_pool, true, 1)
    ->Name("throughput_throw/baseline:workers=1")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(durable_runtime, true, 1)
    ->Name("throughput_throw/durable:workers=1")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(baseline_pool, true, 2)
    ->Name("throughput_throw/baseline:workers=2")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(durable_runtime, true, 2)
    ->Name("throughput_throw/durable:workers=2")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
