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
//
// `spawn/` (issue #18) measures how throughput grows with workers: 1, 2 and
// hardware_concurrency() of them. The benchmark's thread hands out 50 seeds, and each seed
// starts 1/50 of the 100,000 fail-once calls from inside the pool, as a request handler would:
// on durable, a spawned task that spawns; on the baselines, a job that posts jobs. Two
// baselines: the plain pool above (`spawn/plain_pool:`, one queue under one lock), and
// `spawn/baseline:`, a work-stealing pool written by hand (a queue per thread under its own
// lock; an idle thread steals half of another's; a post wakes a sleeping thread only if there
// is one).
//
// `delayed/` is spawn/'s load with a timer per call: each call retries 1 us after it fails, on
// the real clock. On durable that is a retry wait in the runtime's timers (a worker's own heap,
// with two workers or more); on the baseline, a job posted into its thread's timer heap.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
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
// benchmark's thread only between iterations, while nothing runs. A call that succeeds marks
// `finished_in[i]` the same way, and the benchmark's thread counts the marks once everything
// is idle: a shared atomic counter would bounce one cache line between the workers on every
// call and cap every side's scaling with the counter's, not the scheduler's.
struct calls {
  std::vector<std::uint32_t> failed_in = std::vector<std::uint32_t>(call_count, 0);
  std::vector<std::uint32_t> finished_in = std::vector<std::uint32_t>(call_count, 0);
  std::uint32_t generation = 0;

  void start_iteration() noexcept { ++generation; }
};

void finished(calls& c, std::uint32_t i) noexcept { c.finished_in[i] = c.generation; }

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
  for (const std::uint32_t g : c.finished_in) {
    if (g != c.generation) {
      state.SkipWithError("not every call completed");
      return;
    }
  }
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

// The work-stealing baseline: each thread owns a deque (under a lock of its own, which only
// a thief also takes) and runs it first in, first out; a job posted on a pool thread goes to
// that thread's deque; one posted from outside goes to a deque chosen round robin. An idle
// thread steals half of another's deque, and sleeps (on one condition variable) only when
// every deque looked empty. `wait_idle` waits for the count of posted, unfinished jobs to reach
// zero. For `delayed/`, each thread also owns a timer heap (under the same lock), which it
// fires into its own deque whenever it takes a job, and sleeps at most until its earliest timer.
class stealing_pool {
 public:
  explicit stealing_pool(unsigned threads) : queues_(threads) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  stealing_pool(const stealing_pool&) = delete;
  stealing_pool& operator=(const stealing_pool&) = delete;
  ~stealing_pool() {
    {
      std::lock_guard lock(sleep_mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void post(std::function<void()> job) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    const unsigned target = current_index_ != nullptr && current_pool_ == this
                                ? *current_index_
                                : next_.fetch_add(1, std::memory_order_relaxed) % queues_.size();
    {
      std::lock_guard lock(queues_[target].mutex);
      queues_[target].jobs.push_back(std::move(job));
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);  // against a thread going to sleep
    if (sleepers_.load(std::memory_order_relaxed) != 0) {
      std::lock_guard lock(sleep_mutex_);
      wake_.notify_one();
    }
  }

  void wait_idle() {
    std::unique_lock lock(sleep_mutex_);
    idle_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
  }

  // Runs `job` once `delay` has passed: into the timer heap of the posting thread (or of one
  // chosen round robin from outside), which that thread fires into its own deque.
  void post_after(std::chrono::nanoseconds delay, std::function<void()> job) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    const bool inside = current_index_ != nullptr && current_pool_ == this;
    const unsigned target = inside ? *current_index_ : next_.fetch_add(1, std::memory_order_relaxed) % queues_.size();
    {
      queue& q = queues_[target];
      std::lock_guard lock(q.mutex);
      q.timers.push_back(timed_job{std::chrono::steady_clock::now() + delay, q.next_seq++, std::move(job)});
      std::push_heap(q.timers.begin(), q.timers.end(), later{});
    }
    if (inside) return;  // the target is this thread, which is awake
    // Only the target fires its heap, and it may sleep without a deadline: wake every sleeper.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_relaxed) != 0) {
      std::lock_guard lock(sleep_mutex_);
      wake_.notify_all();
    }
  }

 private:
  struct timed_job {
    std::chrono::steady_clock::time_point when;
    std::uint64_t seq;  // first in, first out among jobs due at once
    std::function<void()> job;
  };
  struct later {
    bool operator()(const timed_job& a, const timed_job& b) const noexcept {
      return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
  };
  struct queue {
    std::mutex mutex;
    std::deque<std::function<void()>> jobs;
    std::vector<timed_job> timers;  // a min-heap by `later`
    std::uint64_t next_seq = 0;
  };

  // Moves the due jobs of queue `q`'s heap to the back of its deque (under its lock).
  static void fire_due(queue& q) {
    if (q.timers.empty()) return;  // no clock read when there is no timer
    const auto now = std::chrono::steady_clock::now();
    while (!q.timers.empty() && q.timers.front().when <= now) {
      std::pop_heap(q.timers.begin(), q.timers.end(), later{});
      q.jobs.push_back(std::move(q.timers.back().job));
      q.timers.pop_back();
    }
  }

  bool take(unsigned i, std::function<void()>& job) {
    std::lock_guard lock(queues_[i].mutex);
    fire_due(queues_[i]);
    if (queues_[i].jobs.empty()) return false;
    job = std::move(queues_[i].jobs.front());
    queues_[i].jobs.pop_front();
    return true;
  }

  bool steal(unsigned i) {
    for (std::size_t k = 1; k < queues_.size(); ++k) {
      queue& victim = queues_[(i + k) % queues_.size()];
      std::deque<std::function<void()>> taken;
      {
        std::lock_guard lock(victim.mutex);
        const std::size_t n = victim.jobs.size() - victim.jobs.size() / 2;
        for (std::size_t j = 0; j < n; ++j) {
          taken.push_back(std::move(victim.jobs.front()));
          victim.jobs.pop_front();
        }
      }
      if (taken.empty()) continue;
      std::lock_guard lock(queues_[i].mutex);
      for (auto& job : taken) queues_[i].jobs.push_back(std::move(job));
      return true;
    }
    return false;
  }

  void work(unsigned i) {
    current_pool_ = this;
    current_index_ = &i;
    std::function<void()> job;
    for (;;) {
      if (take(i, job) || (steal(i) && take(i, job))) {
        job();
        job = nullptr;
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard lock(sleep_mutex_);
          idle_.notify_all();
        }
        continue;
      }
      std::unique_lock lock(sleep_mutex_);
      if (stopping_) return;
      sleepers_.fetch_add(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      bool any = false;
      std::optional<std::chrono::steady_clock::time_point> next_due;  // of this thread's heap
      for (auto& q : queues_) {
        std::lock_guard queue_lock(q.mutex);
        any = any || !q.jobs.empty();
        if (&q == &queues_[i] && !q.timers.empty()) next_due = q.timers.front().when;
      }
      if (!any) {
        if (next_due) {
          wake_.wait_until(lock, *next_due);
        } else {
          wake_.wait(lock);
        }
      }
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      if (stopping_) return;
    }
  }

  static inline thread_local const stealing_pool* current_pool_ = nullptr;
  static inline thread_local const unsigned* current_index_ = nullptr;
  std::vector<queue> queues_;
  std::atomic<unsigned> next_{0};
  std::atomic<std::int64_t> pending_{0};
  std::atomic<unsigned> sleepers_{0};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
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
  finished(w->c, i);
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
      finished(*c, i);
    },
    immediately};

inline constexpr durable::function flaky_throw{"flaky_throw",
                                               [](calls* c, std::uint32_t i) -> task<> {
                                                 try_once_or_throw(*c, i);
                                                 finished(*c, i);
                                                 co_return;
                                               },
                                               immediately};

// ---- spawn/: 50 seeds, each starting its share of the calls from inside the pool ----

constexpr std::uint32_t seed_count = 50;
constexpr std::uint32_t calls_per_seed = call_count / seed_count;
static_assert(call_count % seed_count == 0);

template <class Pool>
struct seeded_work {
  Pool& pool;
  calls& c;
};

template <class Pool>
void seeded_try(const seeded_work<Pool>* w, std::uint32_t i) {
  if (!try_once(w->c, i)) {
    w->pool.post([w, i] { seeded_try(w, i); });
    return;
  }
  finished(w->c, i);
}

// `Try` is the job of one try (delayed/ passes one that retries through a timer).
template <class Pool, void (*Try)(const seeded_work<Pool>*, std::uint32_t) = &seeded_try<Pool>>
void seeded_pool(benchmark::State& state, unsigned workers) {
  calls c;
  Pool pool(workers);
  const seeded_work<Pool> w{pool, c};
  for (auto _ : state) {
    c.start_iteration();
    for (std::uint32_t s = 0; s < seed_count; ++s) {
      pool.post([p = &w, s] {
        for (std::uint32_t i = s * calls_per_seed; i < (s + 1) * calls_per_seed; ++i)
          p->pool.post([p, i] { Try(p, i); });
      });
    }
    pool.wait_idle();
    check_completed(state, c);
  }
  report(state);
}

// ---- chain/: 100 chains of 1,000 calls, each call starting the next once it succeeds ----

constexpr std::uint32_t chain_count = 100;
constexpr std::uint32_t chain_length = call_count / chain_count;
static_assert(call_count % chain_count == 0);

template <class Pool>
void chained_try(const seeded_work<Pool>* w, std::uint32_t i) {
  if (!try_once(w->c, i)) {
    w->pool.post([w, i] { chained_try(w, i); });
    return;
  }
  finished(w->c, i);
  if ((i + 1) % chain_length != 0) w->pool.post([w, i] { chained_try(w, i + 1); });
}

template <class Pool>
void chained_pool(benchmark::State& state, unsigned workers) {
  calls c;
  Pool pool(workers);
  const seeded_work<Pool> w{pool, c};
  for (auto _ : state) {
    c.start_iteration();
    for (std::uint32_t k = 0; k < chain_count; ++k) pool.post([p = &w, k] { chained_try(p, k * chain_length); });
    pool.wait_idle();
    check_completed(state, c);
  }
  report(state);
}

// ---- delayed/: spawn/'s load, but each call retries 1 us after it fails: a timer per call ----

constexpr auto retry_delay = 1us;

template <class Pool>
void delayed_try(const seeded_work<Pool>* w, std::uint32_t i) {
  if (!try_once(w->c, i)) {
    w->pool.post_after(retry_delay, [w, i] { delayed_try(w, i); });
    return;
  }
  finished(w->c, i);
}

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

task<> seed(durable::runtime& rt, calls& c, std::uint32_t s) {
  for (std::uint32_t i = s * calls_per_seed; i < (s + 1) * calls_per_seed; ++i) rt.spawn(flaky_fail(&c, i));
  co_return;
}

template <auto Seed>
void seeded_durable(benchmark::State& state, unsigned workers) {
  calls c;
  durable::runtime rt{durable::runtime_options{.seed = 1, .workers = workers}};
  for (auto _ : state) {
    c.start_iteration();
    for (std::uint32_t s = 0; s < seed_count; ++s) rt.spawn(Seed(rt, c, s));
    rt.run_until_idle();
    check_completed(state, c);
  }
  report(state);
}

// A fail-once call whose retry waits retry_delay: the hint of its `fail`, and its policy's delay.
inline constexpr durable::function flaky_later{
    "flaky_later",
    [](calls* c, std::uint32_t i) -> task<> {
      if (!try_once(*c, i)) co_yield durable::fail(durable::status::temporary_error, "not yet", retry_delay);
      finished(*c, i);
    },
    durable::retry_policy{.initial_delay = retry_delay, .jitter = durable::jitter::none}};

task<> delayed_seed(durable::runtime& rt, calls& c, std::uint32_t s) {
  for (std::uint32_t i = s * calls_per_seed; i < (s + 1) * calls_per_seed; ++i) rt.spawn(flaky_later(&c, i));
  co_return;
}

// A fail-once call that, once it succeeds, spawns the next call of its chain.
task<> chained_body(calls* c, durable::runtime* rt, std::uint32_t i);
constexpr durable::function<task<> (*)(calls*, durable::runtime*, std::uint32_t)> chained{"chained", &chained_body,
                                                                                         immediately};
task<> chained_body(calls* c, durable::runtime* rt, std::uint32_t i) {
  if (!try_once(*c, i)) co_yield durable::fail(durable::status::temporary_error, "not yet", 0ms);
  finished(*c, i);
  if ((i + 1) % chain_length != 0) rt->spawn(chained(c, rt, i + 1));
}

void chained_durable(benchmark::State& state, unsigned workers) {
  calls c;
  durable::runtime rt{durable::runtime_options{.seed = 1, .workers = workers}};
  for (auto _ : state) {
    c.start_iteration();
    for (std::uint32_t k = 0; k < chain_count; ++k) rt.spawn(chained(&c, &rt, k * chain_length));
    rt.run_until_idle();
    check_completed(state, c);
  }
  report(state);
}

// 1, 2 and hardware_concurrency() workers (the last only where it is neither 1 nor 2).
void register_spawn_benchmarks() {
  std::vector<unsigned> counts{1, 2};
  if (const unsigned hw = std::thread::hardware_concurrency(); hw > 2) counts.push_back(hw);
  for (const unsigned n : counts) {
    const std::string workers = ":workers=" + std::to_string(n);
    for (const auto& side : {std::pair{"spawn/plain_pool", &seeded_pool<thread_pool>},
                             std::pair{"spawn/baseline", &seeded_pool<stealing_pool>},
                             std::pair{"spawn/durable", &seeded_durable<&seed>},
                             std::pair{"chain/plain_pool", &chained_pool<thread_pool>},
                             std::pair{"chain/baseline", &chained_pool<stealing_pool>},
                             std::pair{"chain/durable", &chained_durable},
                             std::pair{"delayed/baseline", &seeded_pool<stealing_pool, &delayed_try<stealing_pool>>},
                             std::pair{"delayed/durable", &seeded_durable<&delayed_seed>}}) {
      // A copy, not a structured binding: clang 14 cannot capture one.
      void (*const run)(benchmark::State&, unsigned) = side.second;
      benchmark::RegisterBenchmark((side.first + workers).c_str(), [run, n](benchmark::State& state) { run(state, n); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
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

int main(int argc, char** argv) {
  register_spawn_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
