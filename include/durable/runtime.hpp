// durable/runtime.hpp — the runtime: runs tasks, owns timers, the clock and the random source.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "detail/context.hpp"
#include "detail/mersenne_twister.hpp"
#include "detail/frame_pool.hpp"
#include "detail/handle_fifo.hpp"
#include "detail/inject_queue.hpp"
#include "detail/result.hpp"
#include "detail/spin_lock.hpp"
#include "detail/timer_heap.hpp"
#include "detail/trampoline.hpp"
#include "detail/work_queue.hpp"
#include "error.hpp"
#include "event.hpp"
#include "policy.hpp"
#include "status.hpp"
#include "task.hpp"

namespace durable {

/// How a runtime is set up.
struct runtime_options {
  /// Seed of the runtime's random generator (jitter; the sequence of std::mt19937_64). Unset: a
  /// seed that differs for every runtime and every run.
  /// A fixed seed gives the same delays on every standard library.
  std::optional<std::uint64_t> seed{};
  /// Worker threads that run the work; timers fire and attempts resume on them, and `run` and
  /// `run_until_idle` only wait. 0: the threads that call `run` or `run_until_idle` run it.
  /// Unset: `runtime::default_workers` on the real clock, 0 on a `manual_clock` (so a test is
  /// deterministic unless it asks for threads). With workers, event callbacks may run on
  /// several threads at once.
  std::optional<unsigned> workers{};
  /// How long (real time) the destructor waits for detached attempts (see `runtime::drain`)
  /// to end before it destroys them.
  std::chrono::nanoseconds shutdown_grace = std::chrono::seconds(5);
  /// For a runtime that another event loop drives (`durable::asio_driver`): called, on the
  /// thread that adds it and maybe under the runtime's lock, whenever work becomes ready or a
  /// timer is armed; the loop then calls `runtime::poll` (never from inside this callback).
  /// It must be cheap and must not call the runtime. Needs `workers = 0`.
  std::function<void()> work_available{};
};

class runtime;

namespace detail {

/// The coroutine at the bottom of every chain a runtime runs: it awaits the user's task, hands
/// the outcome to `finish`, and frees itself.
struct root_task {
  struct promise_type {
    /// Links in one of the runtime's lists of spawned roots (unused for `run`), and that list's
    /// lock.
    promise_type* prev = nullptr;
    promise_type* next = nullptr;
    spin_lock* list_lock = nullptr;

    // Recycled like the tasks' frames: a spawned task costs its root's frame too.
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept { deallocate_frame(frame, size); }

    root_task get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

/// `co_await root_probe{}` yields the root coroutine's own promise without suspending.
struct root_probe {
  root_task::promise_type* found = nullptr;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<root_task::promise_type> self) noexcept {
    found = &self.promise();
    return false;
  }
  root_task::promise_type& await_resume() const noexcept { return *found; }
};

/// The work queue of a thread while it drives a runtime: what that thread posts to its own
/// runtime goes here, without the runtime's lock (immediate retries, wake-ups it caused, a
/// completion it made). The thread merges it into the runtime under the lock when it is done.
struct driver_queue {
  explicit driver_queue(const void* runtime) noexcept : owner(runtime), ready(std::exchange(spare_storage(), {})) {}
  ~driver_queue() {
    ready.clear();
    if (spare_storage().capacity() < ready.capacity()) spare_storage() = std::move(ready);
  }
  driver_queue(const driver_queue&) = delete;
  driver_queue& operator=(const driver_queue&) = delete;

  const void* owner;
  /// On a worker thread: its own queue, which other workers steal from; what the thread posts
  /// goes there instead of `ready`.
  work_queue* stealable = nullptr;
  unsigned worker = 0;  // with `stealable`: which worker this thread is
  std::vector<std::coroutine_handle<>> ready;  // FIFO from `next`; reused, so no allocation
  std::size_t next = 0;
  /// External waits (durable::completion) this thread ended while driving: the runtime's count
  /// still includes them (so it is not idle while their tasks are about to run here) until the
  /// merge.
  std::size_t ended_waits = 0;

  /// The storage a finished queue leaves for the thread's next one: a poll per event-loop
  /// handler would otherwise allocate and free its vector every time.
  static std::vector<std::coroutine_handle<>>& spare_storage() noexcept {
    thread_local std::vector<std::coroutine_handle<>> spare;
    return spare;
  }

  [[nodiscard]] bool empty() const noexcept { return next == ready.size(); }
  std::coroutine_handle<> pop() noexcept {
    const std::coroutine_handle<> h = ready[next++];
    if (next == ready.size()) {
      ready.clear();
      next = 0;
    }
    return h;
  }
};
inline thread_local driver_queue* current_driver = nullptr;

/// A wait on the runtime that a stop request can end early: a timer (or, unarmed with a time,
/// a wait for someone to cancel it). Allocated per wait from the frame pool, because a
/// cancelled timer stays in the runtime's heap until it reaches the top, maybe after the
/// waiting frame is gone: the heap entry and each other holder count in `refs`. `st` and
/// `refs` are only touched under the runtime's lock, except by the waiter after it resumed
/// from a `fired` wait (the heap has let go of it by then).
struct cancellable_wait {
  enum class state : std::uint8_t { unarmed, armed, parked, fired, cancelled };

  /// Runs on the thread that requests the stop (or inline, if it was requested already).
  struct canceller {
    runtime* rt;
    cancellable_wait* wait;
    void operator()() const noexcept;
  };

  std::coroutine_handle<> handle;
  /// The runtime it waits on (set by a `stoppable_wait`, which keeps no pointer of its own).
  runtime* rt = nullptr;
  state st = state::unarmed;
  std::uint8_t refs = 1;
  std::optional<std::stop_callback<canceller>> on_stop;

  [[nodiscard]] static cancellable_wait* make(std::coroutine_handle<> h, std::uint8_t holders) {
    auto* w = ::new (allocate_frame(sizeof(cancellable_wait))) cancellable_wait;
    w->handle = h;
    w->refs = holders;
    return w;
  }
  static void free(cancellable_wait* w) noexcept {
    w->~cancellable_wait();
    deallocate_frame(w, sizeof(cancellable_wait));
  }
};

/// The failure a stop request ends things with: never retried, whatever its status.
[[nodiscard]] inline failure cancelled_failure(status code, std::uint32_t attempts, std::string_view name,
                                               std::string_view why) {
  return failure(code, failure_reason::cancelled, attempts, name, nullptr, why);
}

/// The fault of a task that was cancelled before it started.
[[nodiscard]] inline fault cancelled_before_start() {
  fault f;
  f.code = status::permanent_error;
  f.exception = std::make_exception_ptr(
      cancelled_failure(status::permanent_error, 0, {}, "cancelled before it started"));
  f.final = true;
  f.reason = failure_reason::cancelled;
  return f;
}

/// Where `runtime::run` waits for its task's outcome.
template <class T>
struct run_state {
  result<T> outcome;
  bool done = false;
};

/// The text of a fault: its exception's what(), or its own text.
[[nodiscard]] inline std::string describe_fault(const fault& f) {
  if (!f.exception) return std::string(f.text());
  try {
    std::rethrow_exception(f.exception);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

/// True if `e` holds a `durable::failure` (of any kind: a call's, `all_failed`).
[[nodiscard]] inline bool is_failure(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const failure&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// Why a root task that ended with `f` failed: a final fault's own reason; otherwise, as a plain
/// task that ran once, attempts exhausted for a retryable status, else a fatal status.
[[nodiscard]] inline failure_reason root_failure_reason(const fault& f) noexcept {
  if (f.final) return f.reason;
  return is_retryable(f.code) ? failure_reason::attempts_exhausted : failure_reason::fatal_status;
}

/// Turns the fault a root task ended with into what `run` throws: a `durable::failure` that a
/// call or a fan-out made already, as it is (wrapping it would repeat its text); anything else
/// as the failure of a plain task that ran once.
[[noreturn]] inline void throw_root_failure(fault& f) {
  if ((f.final && f.exception) || is_failure(f.exception)) std::rethrow_exception(f.exception);
  throw failure(f.code, root_failure_reason(f), 1, {}, f.exception, f.text());
}

}  // namespace detail

/// Runs durable tasks: `run` blocks until a task is done, `spawn` starts one in the background.
/// Owns the timers that wake calls waiting for a retry, the clock (real, or a `manual_clock`
/// that it moves forward itself), the random generator used for jitter, the event callbacks
/// and the worker threads.
class runtime {
 public:
  /// Worker threads of a runtime on the real clock when `runtime_options::workers` is unset.
  static constexpr unsigned default_workers = 2;

  /// A runtime on the real (system) clock.
  runtime() : runtime(runtime_options{}) {}
  explicit runtime(runtime_options options)
      : shutdown_grace_(options.shutdown_grace),
        work_available_(std::move(options.work_available)),
        rng_(seed_of(options)) {
    if (work_available_ && options.workers.value_or(0) != 0) {
      throw std::invalid_argument("durable::runtime: runtime_options::work_available needs workers = 0");
    }
    start_workers(options.workers.value_or(work_available_ ? 0 : default_workers));
  }
  /// A runtime on virtual time: timers never wait for real; the clock jumps to the next one.
  explicit runtime(manual_clock& clock, runtime_options options = {})
      : manual_(&clock),
        shutdown_grace_(options.shutdown_grace),
        work_available_(std::move(options.work_available)),
        rng_(seed_of(options)) {
    start_workers(options.workers.value_or(0));
  }

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// First waits, up to `runtime_options::shutdown_grace`, for detached attempts to end (they
  /// were asked to stop when their calls walked away; see `drain`). Then joins the workers (each
  /// finishes the item it is running), and destroys what was spawned and never finished, and
  /// attempts still detached: their frames are freed and their destructors run, so a foreign
  /// awaitable must never resume them after this. Nothing may still be waiting in `run` on
  /// another thread.
  ~runtime() {
    try {
      if (detached_attempts() != 0) static_cast<void>(drain(shutdown_grace_));
    } catch (...) {  // a lock that cannot be taken: destroy what is left, as below
    }
    stop_workers();
    std::vector<std::coroutine_handle<>> roots;
    {
      std::lock_guard lock(mutex_);
      ready_.clear();
      if (injected_ != nullptr) {  // dropped like ready_: the roots lists destroy their tasks
        std::coroutine_handle<> dropped[fire_batch];
        while (injected_->take(dropped, fire_batch) != 0) {
        }
      }
      while (!timers_.empty()) {
        if (detail::cancellable_wait* w = timers_.top().wait()) release_locked(w);
        timers_.pop();
      }
      for (unsigned i = 0; i < root_list_count(); ++i) {
        root_list& list = root_lists_[i];
        std::lock_guard list_lock(list.lock);
        for (auto* p = list.roots.next; p != &list.roots; p = p->next)
          roots.push_back(std::coroutine_handle<detail::root_task::promise_type>::from_promise(*p));
        list.roots.prev = list.roots.next = &list.roots;
      }
    }
    for (auto h : roots) h.destroy();
    for (callback_node* n = first_callback_.load(std::memory_order_acquire); n != nullptr;) {
      delete std::exchange(n, n->next.load(std::memory_order_relaxed));
    }
  }

  /// Runs `task` to completion on the calling thread (and whichever threads help) and returns
  /// its value, or throws `durable::failure`. A stop requested through `stop` cancels it: the
  /// waits of the library inside it end at once, and `run` throws a `durable::failure` whose
  /// `reason()` is `cancelled` (never retried).
  template <class T, class Policy>
  T run(durable_task<T, Policy> task, std::stop_token stop = {}) {
    if (!task.valid()) throw std::logic_error("durable::runtime::run: the task is empty (moved from?)");
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      throw std::logic_error(
          "durable::runtime::run called from a task (or event callback) running on the same "
          "runtime would wait for itself; co_await the task instead");
    }
    detail::run_state<T> state;
    detail::root_task root = run_root(std::move(task), this, &state, std::move(stop));
    try {
      post(root.handle);
    } catch (...) {
      root.handle.destroy();  // never started: destroying it destroys the task too
      throw;
    }
    if (worker_count_ == 0) {
      drive(&state.done);
    } else {
      std::unique_lock lock(mutex_);
      idle_.wait(lock, [&state] { return state.done; });
    }
    if (state.outcome.has_fault()) detail::throw_root_failure(state.outcome.get_fault());
    return state.outcome.take_value();
  }

  /// Starts `task` without waiting for it; it runs on the workers, or while some thread drives
  /// the runtime (a `run` call, or `run_until_idle`). A failure is reported as a `failed`
  /// event. A stop requested through `stop` cancels it as for `run`.
  template <class T, class Policy>
  void spawn(durable_task<T, Policy> task, std::stop_token stop = {}) {
    if (!task.valid()) throw std::logic_error("durable::runtime::spawn: the task is empty (moved from?)");
    adopt(spawn_root(std::move(task), stoppable_root::make(*this, std::move(stop))));
  }

  /// Runs everything that is ready or waiting on a timer until nothing is left.
  void run_until_idle() {
    if (worker_count_ == 0) {
      drive(nullptr);
      return;
    }
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return idle_locked(); });
  }

  /// Runs, on the calling thread and without waiting, the work that is ready and the timers that
  /// are due (at most a few hundred items; `work_available` is called again if more is left).
  /// For a runtime driven by another event loop (see runtime_options::work_available); on a
  /// manual clock, time does not jump here. Returns when the next timer is due, if one is armed.
  std::optional<time_point> poll() {
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      throw std::logic_error("durable::runtime::poll called from a task on the same runtime");
    }
    detail::driver_queue mine(this);
    const driver_scope scope(&mine);
    std::unique_lock lock(mutex_);
    return poll_locked(mine, lock);
  }

  /// `poll`, after running `complete` on the calling thread as if it were the runtime's work: a
  /// task whose `durable::completion` it completes resumes right here, before anything else,
  /// without a trip through the shared queue. For an event loop's handler that completes a
  /// durable wait on a thread that drives this runtime (`durable::asio_driver`).
  template <std::invocable Complete>
  std::optional<time_point> poll_after(Complete&& complete) {
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      throw std::logic_error("durable::runtime::poll_after called from a task on the same runtime");
    }
    detail::driver_queue mine(this);
    const driver_scope scope(&mine);
    std::forward<Complete>(complete)();
    if (!mine.empty()) {
      // Without the lock and without counting as busy: every task that runs here was resumed
      // by a wait `complete` ended, which the runtime still counts (mine.ended_waits), so no
      // thread finds it idle or jumps a manual clock meanwhile.
      detail::trampoline here;
      for (int budget = 256; !mine.empty() && budget > 0; --budget) here.resume(mine.pop());
    }
    std::unique_lock lock(mutex_);
    merge_locked(mine);
    return poll_locked(mine, lock);
  }

  /// How many attempts are running that their calls walked away from (a stop request, an
  /// attempt_timeout) and that have not ended yet: attempts suspended in an awaitable the library
  /// does not own when their call went on. They were asked to stop (their stop token).
  [[nodiscard]] std::size_t detached_attempts() const {
    std::lock_guard lock(mutex_);
    return walked_away_;
  }

  /// Waits until every detached attempt (see `detached_attempts`) has ended, for at most
  /// `timeout` of real time (the foreign work they wait on runs on real time, whatever the
  /// runtime's clock). Without workers, the calling thread runs the runtime's ready work
  /// meanwhile (not its timers: the clock stays where it is). True if none is left.
  bool drain(std::chrono::nanoseconds timeout) {
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      throw std::logic_error("durable::runtime::drain called from a task on the same runtime would wait for itself");
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (worker_count_ != 0) {
      std::unique_lock lock(mutex_);
      return idle_.wait_until(lock, deadline, [this] { return walked_away_ == 0; });
    }
    detail::driver_queue mine(this);
    const driver_scope scope(&mine);
    detail::trampoline here;
    std::unique_lock lock(mutex_);
    while (walked_away_ != 0) {
      if (!ready_.empty()) {
        const std::coroutine_handle<> h = ready_.front();
        ready_.pop_front();
        run_on_this_thread(h, mine, here, lock);
        continue;
      }
      if (wait_woken_until(lock, deadline) == std::cv_status::timeout) break;
    }
    return walked_away_ == 0;
  }

  /// Entries in the timer heap, cancelled waits not swept out yet included: at most about twice
  /// the live timers (a diagnostic, for tests and memory measurements).
  [[nodiscard]] std::size_t timer_entries() const {
    std::lock_guard lock(mutex_);
    return timers_.size() + worker_timer_count();
  }

  /// Registers a callback for every `event`, at any time, from any thread (a callback may
  /// register another). Callbacks run on the thread that runs the call; one registered while an
  /// event is being delivered may or may not see that event. An exception a callback throws is
  /// ignored.
  void on_event(std::function<void(const event&)> callback) {
    auto* added = new callback_node{std::move(callback), {nullptr}};
    std::lock_guard lock(mutex_);
    // release: a thread that finds the node (acquire) sees its callback constructed.
    (last_callback_ == nullptr ? first_callback_ : last_callback_->next).store(added, std::memory_order_release);
    last_callback_ = added;
  }

  /// How many worker threads run its work (0: the threads that call `run` run it).
  [[nodiscard]] std::size_t worker_count() const noexcept { return worker_count_; }

  /// The runtime's clock.
  [[nodiscard]] time_point now() const noexcept {
    if (manual_ != nullptr) return manual_->now();
    return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }

  // ---- used by the library's awaitables and layers; not part of the user-facing contract ----

  /// Waits until `done` is set by `set_done`, driving the runtime meanwhile as `run` does (on a
  /// runtime without workers, the calling thread runs the work). `who` names the caller in the
  /// error thrown when a task of this runtime would wait for itself.
  void wait_until_done(const bool& done, const char* who) {
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      throw std::logic_error(std::string(who) + " called from a task on the same runtime would wait for itself");
    }
    if (worker_count_ == 0) {
      drive(&done);
    } else {
      std::unique_lock lock(mutex_);
      idle_.wait(lock, [&done] { return done; });
    }
  }
  /// Sets `done` under the runtime's lock and wakes whoever waits for it (`wait_until_done`,
  /// `run`).
  void set_done(bool& done) {
    {
      std::lock_guard lock(mutex_);
      done = true;
    }
    if (worker_count_ == 0) wake_.notify_all();  // a thread driving the runtime may wait for it
    idle_.notify_all();
  }


  /// Resumes `h` from the runtime's shared queue once `when` has come; a time already past
  /// queues it behind the work that is ready now (a zero sleep yields to others).
  void schedule_at(time_point when, std::coroutine_handle<> h) {
    // One worker shares its lock with nobody: the runtime's heap is cheaper for it (fired in one
    // batch per look, without a heap of its own to lock and publish).
    if (worker_count_ > 1 && on_own_worker()) {
      schedule_on_worker(worker_states_[detail::current_driver->worker], when, h);
      return;
    }
    bool driver_waits = false;
    {
      std::lock_guard lock(mutex_);
      if (when <= now()) {
        queue_locked(h);
      } else {
        push_timer_locked(timer(when, next_timer_seq_++, h));
      }
      driver_waits = drivers_waiting_ != 0;
    }
    if (driver_waits) wake_.notify_one();
    work_arrived();
  }

  /// Resumes `h` from the runtime's queue: on a thread driving this runtime, its own queue,
  /// which it runs next without locking (how a call's immediate retry is queued).
  void post(std::coroutine_handle<> h) {
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      // This thread runs it soon (or, on a worker, another one steals it); no lock needed.
      if (detail::current_driver->stealable != nullptr) {
        post_on_worker(*detail::current_driver->stealable, h);
      } else {
        detail::current_driver->ready.push_back(h);
      }
      return;
    }
    if (injected_ != nullptr && injected_->push(h)) {
      // Pairs with the fence of a worker going to sleep (find_work), as in post_on_worker: either
      // it sees this item, or this thread sees it asleep and wakes it.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (sleeping_.load(std::memory_order_relaxed) != 0) {
        std::lock_guard lock(mutex_);
        wake_worker_locked();
      }
      return;  // (work_available needs workers = 0; no driver waits on wake_ with workers)
    }
    bool driver_waits = false;
    {
      std::lock_guard lock(mutex_);
      queue_locked(h);
      driver_waits = drivers_waiting_ != 0;
    }
    if (driver_waits) wake_.notify_one();
    work_arrived();
  }

  /// A task suspends in a `durable::completion`, which something outside the runtime completes.
  /// Until the matching `end_external_wait`, the runtime is not idle (`run_until_idle` waits for
  /// it) and a manual clock does not jump: virtual time stands still while real work is out.
  void begin_external_wait() noexcept {
    // No lock: the task calling this is running, so the readers (which need busy_ == 0 before
    // the count matters) cannot act on a stale value; the decrement is ordered by the lock.
    external_waits_.fetch_add(1, std::memory_order_relaxed);
  }
  /// That wait ended: `h`, unless null (it did not suspend), is queued to resume on the runtime.
  /// From a thread that does not drive the runtime, everything happens under the lock: once the
  /// lock is released the resumed task may finish and the runtime be destroyed.
  void end_external_wait(std::coroutine_handle<> h) noexcept {
    if (detail::current_driver != nullptr && detail::current_driver->owner == this) {
      if (detail::current_driver->stealable != nullptr) {
        // A worker: it counts as awake until its queue is empty, so the runtime cannot look
        // idle (nor a manual clock jump) before `h` has run; the count can go down now.
        if (h) post_on_worker(*detail::current_driver->stealable, h);
        external_waits_.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      // This thread drives the runtime (a task of it completed the wait, or an event loop's
      // handler inside poll_after), so the runtime stays alive, and the thread runs `h` itself
      // and settles the count when it merges its queue.
      if (h) detail::current_driver->ready.push_back(h);
      ++detail::current_driver->ended_waits;
      return;
    }
    std::lock_guard lock(mutex_);
    external_waits_.fetch_sub(1, std::memory_order_relaxed);
    if (h) {
      queue_locked(h);
    } else if (worker_count_ != 0 && manual_ != nullptr && live_timers() != 0) {
      wake_worker_locked();  // the last wait is over: a sleeping worker may jump the clock now
    }
    if (worker_count_ == 0) wake_.notify_all();  // a thread in `run` may wait for it, a manual clock may jump
    idle_.notify_all();
    if (h) work_arrived();
  }

  /// Starts a root coroutine made by the library (a background attempt, a fan-out child): it
  /// is destroyed with the runtime if it has not finished, and must end by calling `forget`.
  void adopt(detail::root_task root) {
    link_root(root.handle.promise());
    // On a thread that runs this runtime's work, into its own queue (a worker's is one that idle
    // workers steal from: a fan-out's children are free to run on different threads).
    post(root.handle);
  }

  /// Called by an adopted root as it ends.
  void forget(detail::root_task::promise_type& root) {
    if (worker_count_ != 0) {
      unlink_root(root);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      unlink_root(root);
    }
    wake_.notify_all();
  }

  /// Arms `w` to resume its coroutine at `when`, or, without a time, when it is cancelled.
  /// Returns false if it was cancelled before it could be armed: the caller must not suspend.
  /// Once this returns true the coroutine may already be running on another thread.
  bool arm(detail::cancellable_wait& w, std::optional<time_point> when) {
    using state = detail::cancellable_wait::state;
    {
      std::lock_guard lock(mutex_);
      if (w.st == state::cancelled) return false;
      if (!when) {
        w.st = state::parked;
        return true;
      }
      if (*when <= now()) {
        w.st = state::fired;
        queue_locked(w.handle);
      } else {
        w.st = state::armed;
        ++w.refs;  // the heap entry's
        push_timer_locked(timer(*when, next_timer_seq_++, w));
      }
    }
    if (worker_count_ == 0) wake_.notify_one();
    work_arrived();
    return true;
  }

  /// Ends `w` early: an armed or parked wait's coroutine is queued at once (it finds the state
  /// `cancelled`); an unarmed one will refuse to arm. A wait that fired is left alone.
  void cancel(detail::cancellable_wait& w) noexcept {
    bool queued = false;
    {
      std::lock_guard lock(mutex_);
      queued = cancel_locked(w);
    }
    if (queued) {
      if (worker_count_ == 0) wake_.notify_one();
      work_arrived();
    }
  }

  /// A call walked away from its attempt, which runs on (see guarded_attempt.hpp).
  void walked_away_from_attempt() {
    std::lock_guard lock(mutex_);
    ++walked_away_;
  }

  /// How an attempt run in the background ends (guarded_attempt.hpp), as its last touch of the
  /// runtime: under one lock, `under_lock(*this)` wakes its call and lets go of what it shares
  /// with it (through the `_locked` members), the root is forgotten, and, if its call had walked
  /// away from it, the count of those goes down. Waiters are notified before the lock is
  /// released: once it is, `drain` in the destructor may free this runtime.
  template <class UnderLock>
  void end_background_attempt(detail::root_task::promise_type& root, bool walked_away, UnderLock under_lock) noexcept {
    std::lock_guard lock(mutex_);
    under_lock(*this);
    unlink_root(root);
    if (walked_away) --walked_away_;
    if (worker_count_ == 0) wake_.notify_all();
    work_arrived();  // under the lock: once it is released the runtime may be gone
    idle_.notify_all();
  }

  /// `cancel`, for a caller that holds the lock (`end_background_attempt`). True if it queued
  /// the waiter (the caller notifies).
  bool cancel_locked(detail::cancellable_wait& w) noexcept {
    using state = detail::cancellable_wait::state;
    const state was = w.st;
    if (was == state::fired || was == state::cancelled) return false;
    w.st = state::cancelled;
    if (was == state::unarmed) return false;
    if (was == state::armed) {
      ++cancelled_timers_;
      drop_cancelled_timers();
    }
    queue_locked(w.handle);
    return true;
  }

  /// `release`, for a caller that holds the lock (`end_background_attempt`).
  void release_locked(detail::cancellable_wait* w) noexcept {
    if (--w->refs == 0) detail::cancellable_wait::free(w);
  }

  /// Drops one holder's reference to `w`, freeing it with the last one.
  void release(detail::cancellable_wait* w) noexcept {
    std::lock_guard lock(mutex_);
    release_locked(w);
  }

  /// A random number in [0, 1) from the runtime's generator: (bits >> 11) x 2^-53.
  double random_unit() {
    std::lock_guard lock(mutex_);
    return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  }

  /// Delivers an event to every callback.
  /// An exception thrown by a callback is ignored: observing a call must not change it.
  void emit(event_kind kind, std::string_view name, std::uint32_t attempt, status code,
            std::chrono::nanoseconds delay = std::chrono::nanoseconds::zero()) noexcept {
    if (has_event_callbacks()) deliver(event{kind, name, attempt, code, delay, now()});
  }

  /// Delivers an event about a failure: `reason`, and the message and retry-after hint of
  /// `cause` (or `text` without one), read only when a callback will see them.
  void emit_failure(event_kind kind, std::string_view name, std::uint32_t attempt, status code,
                    std::optional<failure_reason> reason, const detail::fault* cause, std::string_view text = {},
                    std::chrono::nanoseconds delay = std::chrono::nanoseconds::zero()) noexcept {
    if (has_event_callbacks()) deliver_failure(event{kind, name, attempt, code, delay, now(), reason, text}, cause);
  }

  /// True once a callback is registered (an event costs only this test until then).
  [[nodiscard]] bool has_event_callbacks() const noexcept {
    return first_callback_.load(std::memory_order_relaxed) != nullptr;
  }

 private:
  [[gnu::noinline]] void deliver_failure(event e, const detail::fault* cause) noexcept {
    std::string described;  // lives until the callbacks have returned
    if (cause != nullptr) {
      e.retry_after = cause->retry_after;
      if (cause->exception) {
        try {
          described = detail::describe_fault(*cause);
        } catch (...) {  // no memory for the text: the event goes without it
        }
        e.message = described;
      } else {
        e.message = cause->text();
      }
    }
    deliver(e);
  }

  // Out of line: a call emits several events per attempt, and without callbacks each must cost
  // only the test above.
  [[gnu::noinline]] void deliver(const event& e) noexcept {
    for (const callback_node* n = first_callback_.load(std::memory_order_acquire); n != nullptr;
         n = n->next.load(std::memory_order_acquire)) {
      try {
        n->callback(e);
      } catch (...) {
      }
    }
  }

  // The event callbacks: a list that only grows (until the runtime dies), so that delivery on
  // any number of threads walks it without a lock while another thread appends to it.
  struct callback_node {
    std::function<void(const event&)> callback;
    std::atomic<callback_node*> next;
  };



  // Three words: a million calls waiting for their retries are a million of these. A wait
  // that can be cancelled is told apart by the low bit of `target` (both kinds of pointer are
  // at least 8-byte aligned); its coroutine handle is in the wait.
  class timer {
   public:
    timer(time_point due, std::uint64_t order, std::coroutine_handle<> h) noexcept
        : when(due), seq(order), target_(reinterpret_cast<std::uintptr_t>(h.address())) {}
    timer(time_point due, std::uint64_t order, detail::cancellable_wait& w) noexcept
        : when(due), seq(order), target_(reinterpret_cast<std::uintptr_t>(&w) | cancellable_tag) {}

    /// The cancellable wait, or null for a wait that cannot be cancelled.
    [[nodiscard]] detail::cancellable_wait* wait() const noexcept {
      return (target_ & cancellable_tag) != 0 ? reinterpret_cast<detail::cancellable_wait*>(target_ & ~cancellable_tag)
                                              : nullptr;
    }
    /// The coroutine to resume.
    [[nodiscard]] std::coroutine_handle<> handle() const noexcept {
      if (detail::cancellable_wait* w = wait()) return w->handle;
      return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(target_));
    }
    bool operator>(const timer& other) const noexcept {
      return when != other.when ? when > other.when : seq > other.seq;
    }

    time_point when;
    std::uint64_t seq;  // FIFO among timers due at the same instant

   private:
    static constexpr std::uintptr_t cancellable_tag = 1;
    std::uintptr_t target_;
  };
  static_assert(sizeof(timer) <= 2 * sizeof(std::uint64_t) + sizeof(void*),
                "durable: a million calls waiting for retries are a million timers: keep them small");

  // The cancelled waits of an attempt_timeout that ended in time, or of a cancelled sleep, would
  // stay in the heap until they reached its top (one long timer at the top keeps them all):
  // once they are more than half the heap, they are swept out in one pass, so the heap holds
  // at most twice the live timers and a cancel costs amortised O(1).
  using timer_heap = detail::timer_heap<timer>;
  static std::uint64_t seed_of(const runtime_options& options) {
    return options.seed ? *options.seed : detail::fresh_seed();
  }

  template <class T, class Policy>
  static detail::root_task run_root(durable_task<T, Policy> task, runtime* rt, detail::run_state<T>* state,
                                    std::stop_token token) {
    {
      durable_task<T, Policy> owned = std::move(task);
      const detail::stop_scope stop{std::move(token)};
      if (stop.stop_requested()) {
        state->outcome.set_fault(detail::cancelled_before_start());
      } else {
        detail::call_context context{rt, {}, stop.stop_possible() ? &stop : nullptr};
        detail::result<T>& outcome = co_await detail::outcome_awaiter<T, Policy>{owned.handle(), &context};
        state->outcome.take_from(outcome);
      }
    }  // the task's frame is gone before `run` can return
    rt->set_done(state->done);
  }

  // The context of a spawned root that a stop token can stop. Allocated only then: the others
  // share `unstoppable_`, so that a spawned call waiting for its retry carries no context of
  // its own besides the call's (see benchmarks/memory.cpp).
  struct stoppable_root {
    detail::stop_scope token;
    detail::call_context context;

    static std::unique_ptr<stoppable_root> make(runtime& rt, std::stop_token stop) {
      if (!stop.stop_possible()) return nullptr;
      auto made = std::make_unique<stoppable_root>(stoppable_root{{std::move(stop)}, {&rt, {}}});
      made->context.stop = &made->token;
      return made;
    }
  };

  template <class T, class Policy>
  detail::root_task spawn_root(durable_task<T, Policy> task, std::unique_ptr<stoppable_root> stop) {
    if (stop != nullptr && stop->token.stop_requested()) {
      emit_failure(event_kind::failed, {}, 0, status::permanent_error, failure_reason::cancelled, nullptr,
                   "cancelled before it started");
    } else {
      task.handle().promise().set_context(stop != nullptr ? &stop->context : &unstoppable_);
      co_await detail::resume_task(task);
      report_spawned(task.handle().promise().outcome);
    }
    forget(co_await detail::root_probe{});
  }

  template <class T>
  void report_spawned(const detail::result<T>& outcome) noexcept {
    if (outcome.has_fault() && !outcome.get_fault().final) {
      // A plain task has no call to report its failure; do it here so it never vanishes.
      const detail::fault& f = outcome.get_fault();
      emit_failure(event_kind::failed, {}, 1, f.code, detail::root_failure_reason(f), &f);
    }
  }

  // Exact under the lock while every worker sleeps (each wrote its heap's size before it took
  // the lock to go to sleep); while one runs, the runtime is not idle anyway.
  [[nodiscard]] std::size_t live_timers() const noexcept {
    return timers_.size() - cancelled_timers_ + worker_timer_count();
  }
  [[nodiscard]] std::size_t worker_timer_count() const noexcept {
    std::size_t n = 0;
    for (unsigned i = 0; i < worker_count_; ++i) n += worker_states_[i].timers.size.load(std::memory_order_relaxed);
    return n;
  }
  // When the earliest live timer of any heap is due (under the lock, with one armed at least).
  [[nodiscard]] time_point earliest_timer() const noexcept {
    std::int64_t earliest = timers_.size() != cancelled_timers_ ? timers_.top().when.time_since_epoch().count()
                                                                : worker_timers::none;
    for (unsigned i = 0; i < worker_count_; ++i)
      earliest = std::min(earliest, worker_states_[i].timers.earliest.load(std::memory_order_relaxed));
    return time_point(std::chrono::nanoseconds(earliest));
  }

  // Pops cancelled timers off the top of the heap, so that the top is always a live timer (the
  // manual clock jumps to it; a real-clock thread sleeps until it).
  void drop_cancelled_timers() noexcept {
    using state = detail::cancellable_wait::state;
    while (!timers_.empty() && timers_.top().wait() != nullptr && timers_.top().wait()->st == state::cancelled) {
      release_locked(timers_.top().wait());
      timers_.pop();
      --cancelled_timers_;
    }
    if (live_timers() == 0) {  // only cancelled ones are left, deeper down: drop them all
      while (!timers_.empty()) {
        if (detail::cancellable_wait* w = timers_.top().wait()) release_locked(w);
        timers_.pop();
      }
      cancelled_timers_ = 0;
    } else if (cancelled_timers_ >= min_sweep && 2 * cancelled_timers_ > timers_.size()) {
      timers_.sweep([this](const timer& t) {
        detail::cancellable_wait* w = t.wait();
        if (w == nullptr || w->st != state::cancelled) return false;
        release_locked(w);
        return true;
      });
      cancelled_timers_ = 0;
    }
  }

  // Moves due timers to the ready queue. On a manual clock with nothing else to do, first
  // jumps the clock to the earliest timer. Returns false when the caller must wait.
  bool fire_timers(std::unique_lock<std::mutex>& lock) {
    if (timers_.empty()) return false;
    if (manual_ != nullptr && busy_ == 0 && external_waits_ == 0) manual_->advance_to(timers_.top().when);
    const bool fired = fire_due_timers();
    if (!fired) {
      if (manual_ != nullptr) {
        wait_woken(lock);  // another thread is busy; it may add work or finish
      } else {
        // A copy: wait_until reads its deadline again after re-locking, when another thread may
        // have pushed a timer and reallocated the heap (a reference to top() would dangle).
        const time_point next_due = timers_.top().when;
        wait_woken_until(lock, next_due);
      }
    }
    return true;
  }

  // Queues the waiters of every timer due now (under the lock). True if any fired.
  bool fire_due_timers() {
    if (timers_.empty()) return false;  // no clock read: poll() calls this after every item
    const time_point current = now();
    bool fired = false;
    while (!timers_.empty() && timers_.top().when <= current) {
      const timer due = timers_.top();
      timers_.pop();
      const std::coroutine_handle<> h = due.handle();
      // The frame is likely cold (it slept); fetching it now overlaps the miss with the queue
      // and lock traffic before its resume, whose locked instructions would otherwise expose it.
      __builtin_prefetch(h.address());
      if (detail::cancellable_wait* w = due.wait()) {
        w->st = detail::cancellable_wait::state::fired;
        release_locked(w);  // the waiter still holds it
      }
      queue_locked(h);
      fired = true;
      drop_cancelled_timers();
    }
    return fired;
  }

  // A thread driving a runtime without workers waits on wake_, counted in drivers_waiting_:
  // a notifier that reads it as zero under the lock skips the notify (nobody can be waiting,
  // and a thread about to wait checks for work under the same lock first).
  void wait_woken(std::unique_lock<std::mutex>& lock) {
    ++drivers_waiting_;
    wake_.wait(lock);
    --drivers_waiting_;
  }
  template <class TimePoint>
  std::cv_status wait_woken_until(std::unique_lock<std::mutex>& lock, const TimePoint& until) {
    ++drivers_waiting_;
    const std::cv_status woken = wake_.wait_until(lock, until);
    --drivers_waiting_;
    return woken;
  }

  void work_arrived() const noexcept {
    if (work_available_) work_available_();
  }

  void start_workers(unsigned count) {
    make_root_lists(count);
    if (count == 0) return;
    worker_states_ = std::make_unique<worker_state[]>(count);
    injected_ = std::make_unique<detail::inject_queue>();
    worker_count_ = count;
    active_ = static_cast<int>(count);  // each one counts as awake until it first goes to sleep
    try {
      for (unsigned i = 0; i < count; ++i) workers_.emplace_back([this, i] { work(i); });
    } catch (...) {
      stop_workers();
      throw;
    }
  }

  // Asks the workers to stop (each finishes the item it is running) and joins them.
  void stop_workers() {
    {
      std::lock_guard lock(mutex_);
      stopping_.store(true, std::memory_order_relaxed);
      for (unsigned i = 0; i < worker_count_; ++i) worker_states_[i].wake.notify_one();
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }

  // The spawned roots that have not finished, for the destructor to destroy: a list per worker
  // (and one for every other thread), each under a lock of its own, so that workers spawning
  // and finishing tasks do not all write to one list and one lock (the lock order: mutex_,
  // then a list's lock). A root joins the list of the thread that spawns it and leaves it on
  // whichever thread it finishes.
  struct alignas(64) root_list {
    detail::spin_lock lock;
    detail::root_task::promise_type roots;  // the sentinel of a circular list
  };
  [[nodiscard]] unsigned root_list_count() const noexcept { return worker_count_ + 1; }
  void make_root_lists(unsigned workers) {
    root_lists_ = std::make_unique<root_list[]>(workers + 1);
    for (unsigned i = 0; i <= workers; ++i) root_lists_[i].roots.prev = root_lists_[i].roots.next = &root_lists_[i].roots;
  }
  void link_root(detail::root_task::promise_type& p) noexcept {
    root_list& list = root_lists_[on_own_worker() ? detail::current_driver->worker + 1 : 0];
    std::lock_guard lock(list.lock);
    p.list_lock = &list.lock;
    p.prev = list.roots.prev;
    p.next = &list.roots;
    list.roots.prev->next = &p;
    list.roots.prev = &p;
  }
  void unlink_root(detail::root_task::promise_type& p) noexcept {
    std::lock_guard lock(*p.list_lock);
    p.prev->next = p.next;
    p.next->prev = p.prev;
  }

  // A worker's timers: the ones that nothing can cancel (retry waits and sleeps of work without
  // a stop token) that tasks running on it schedule. Under a lock of their own, which only a
  // worker firing them also takes: scheduling and firing them takes no lock the workers share.
  // (Cancellable waits stay in the runtime's heap: a stop request from any thread and the end
  // of a background attempt change their state under the runtime's lock.)
  struct worker_timers {
    static constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
    detail::spin_lock lock;
    timer_heap heap;              // under `lock`
    std::uint64_t next_seq = 0;   // under `lock`: FIFO among this heap's timers due at once
    // Written under `lock`, read without it: the heap's size, and when its top is due (ns since
    // the epoch; `none` when it is empty).
    std::atomic<std::size_t> size{0};
    std::atomic<std::int64_t> earliest{none};

    // After a change to `heap`, under `lock`.
    void publish() noexcept {
      size.store(heap.size(), std::memory_order_relaxed);
      earliest.store(heap.empty() ? none : heap.top().when.time_since_epoch().count(), std::memory_order_relaxed);
    }
  };

  // One per worker thread.
  struct worker_state {
    detail::work_queue queue;
    worker_timers timers;
    std::condition_variable wake;  // with mutex_
    bool asleep = false;           // under mutex_: waits in `wake` until someone clears it
  };

  // ---- the workers: a queue each, stealing, and sleeping without a stampede ----
  //
  // A worker runs its own queue first in, first out. What a task posts on a worker (an
  // immediate retry, a spawn, a wake-up it caused) goes to that worker's queue without a lock.
  // Work from other threads, fired timers and cancelled waits go to the shared queue `ready_`
  // (under `mutex_`), from which a worker takes a batch at a time. A worker whose queue is
  // empty takes from the shared queue, then steals half of another worker's queue, then sleeps
  // on a condition variable of its own; whoever queues work wakes one sleeper, not all. One
  // sleeping worker at a time (the keeper) sleeps only until the next timer is due.

  bool on_own_worker() const noexcept {
    return detail::current_driver != nullptr && detail::current_driver->owner == this &&
           detail::current_driver->stealable != nullptr;
  }

  // `h`, posted on a worker, into that worker's own queue.
  void post_on_worker(detail::work_queue& own, std::coroutine_handle<> h) {
    const detail::work_queue::pushed how = own.push(h);
    if (how == detail::work_queue::pushed::full) [[unlikely]] {
      spill(own, h);
      return;
    }
    // Only a push onto an empty queue looks for a sleeper: a worker that went to sleep saw every
    // queue empty, so one that held work since has been through such a push. (The owner's view
    // of its head may be stale, so a push after a thief emptied the queue can pass for one onto
    // work; find_work's periodic check below catches that within one budget of items.)
    if (worker_count_ > 1 && how == detail::work_queue::pushed::onto_empty) {
      // Pairs with the fence in find_work: either a worker going to sleep sees this item, or
      // this thread sees it asleep and wakes it (a store then a load on each side: only
      // seq_cst orders them).
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (sleeping_.load(std::memory_order_relaxed) != 0) {
        std::lock_guard lock(mutex_);
        wake_worker_locked();
      }
    }
  }

  // `h` at `when`, for a task running on worker `me`: into that worker's own heap.
  void schedule_on_worker(worker_state& me, time_point when, std::coroutine_handle<> h) {
    if (when <= now()) {
      post_on_worker(me.queue, h);  // behind what is ready on this worker (a zero sleep yields)
      return;
    }
    bool earliest = false;
    {
      std::lock_guard lock(me.timers.lock);
      worker_timers& t = me.timers;
      earliest = t.heap.empty() || t.heap.top().when > when;
      t.heap.push(timer(when, t.next_seq++, h));
      t.publish();
    }
    // On a manual clock the last worker to go to sleep jumps the clock, and this one is awake.
    // (Only runtimes with two workers or more get here: see schedule_at.)
    if (!earliest || manual_ != nullptr) return;
    // Pairs with the fence of a worker going to sleep (find_work): either it sees this timer
    // when it reads the heaps, or this thread sees it asleep and the time it keeps (a store then
    // a load on each side: only seq_cst orders them).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed) == 0) return;
    if (!keeper_wakes_after(when)) return;  // it wakes in time (read without the lock: checked again under it)
    std::lock_guard lock(mutex_);
    if (keeper_wakes_after(when)) wake_keeper_locked();
  }

  static constexpr std::size_t fire_batch = 32;

  // How much one look in find_work may add to worker `me`'s queue from one source (due timers,
  // posts from outside): what leaves it half full, and one batch at least, so that a queue kept
  // full by immediate retries still takes some. More would overflow it into the shared queue.
  [[nodiscard]] static std::size_t room_for_a_look(const worker_state& me) noexcept {
    constexpr std::uint32_t half = detail::work_queue::capacity / 2;
    const std::uint32_t queued = me.queue.size_hint();
    return std::max<std::size_t>(fire_batch, queued < half ? half - queued : 0);
  }

  // Queues on worker `me` the waiters of the timers due now in the workers' heaps: its own
  // first, then the others' (a worker busy with a long item does not hold its due timers back).
  // Without the runtime's lock.
  void fire_worker_timers(worker_state& me, unsigned index) {
    std::int64_t current = worker_timers::none;
    // At most room_for_a_look: what is left stays due in its heap, for the next look (this
    // worker's or another's).
    std::size_t room = room_for_a_look(me);
    for (unsigned k = 0; k < worker_count_ && room != 0; ++k) {
      worker_timers& t = worker_states_[(index + k) % worker_count_].timers;
      const std::int64_t due = t.earliest.load(std::memory_order_relaxed);
      if (due == worker_timers::none) continue;
      if (current == worker_timers::none) current = now().time_since_epoch().count();  // read once, if needed
      if (due > current) continue;
      for (bool more = true; more && room != 0;) {
        // A batch at a time, queued after the heap's lock is released: a push may take the
        // runtime's lock (a sleeper to wake, a full queue), which is never taken under a heap's.
        std::coroutine_handle<> batch[fire_batch];
        const std::size_t limit = std::min(room, fire_batch);
        std::size_t n = 0;
        {
          std::lock_guard lock(t.lock);
          while (n < limit && !t.heap.empty() && t.heap.top().when.time_since_epoch().count() <= current) {
            batch[n++] = t.heap.top().handle();
            t.heap.pop();
          }
          t.publish();
          more = n == limit;
        }
        room -= n;
        for (std::size_t i = 0; i < n; ++i) {
          __builtin_prefetch(batch[i].address());  // see fire_due_timers
          post_on_worker(me.queue, batch[i]);
        }
      }
    }
  }

  // A worker's queue is full: its older half goes to the shared queue, and `h` behind the rest.
  [[gnu::noinline]] void spill(detail::work_queue& own, std::coroutine_handle<> h) {
    std::coroutine_handle<> moved[detail::work_queue::capacity / 2];
    const std::uint32_t n = own.take(moved, detail::work_queue::capacity / 2);
    std::lock_guard lock(mutex_);
    for (std::uint32_t i = 0; i < n; ++i) queue_locked(moved[i]);
    // Room now (only this thread pushes); the shared queue only if something else went wrong.
    if (own.push(h) == detail::work_queue::pushed::full) queue_locked(h);
  }

  // Into the shared queue (under the lock); a sleeping worker is woken for it.
  void queue_locked(std::coroutine_handle<> h) {
    ready_.push_back(h);
    if (sleeping_.load(std::memory_order_relaxed) != 0) wake_worker_locked();
  }

  // Into the timer heap (under the lock). A timer due before the one the keeper sleeps until,
  // or one nobody sleeps until yet, wakes a worker to keep time (on a manual clock, only while
  // every worker sleeps: the last one to go to sleep jumps the clock).
  void push_timer_locked(timer t) {
    timers_.push(t);
    if (sleeping_.load(std::memory_order_relaxed) == 0) return;
    if (manual_ != nullptr ? active_ == 0 : keeper_wakes_after(t.when)) wake_keeper_locked();
  }

  // No keeper, or one that sleeps past `when`: a timer due then must wake it (exact under the
  // lock).
  [[nodiscard]] bool keeper_wakes_after(time_point when) const noexcept {
    return when.time_since_epoch().count() < keeper_due_.load(std::memory_order_relaxed);
  }

  // Wakes one sleeping worker, not the keeper if another sleeps (it keeps waiting for the
  // timers). Under the lock.
  void wake_worker_locked() noexcept {
    if (sleeping_.load(std::memory_order_relaxed) == 0) return;
    for (unsigned i = 0; i < worker_count_; ++i) {
      if (worker_states_[i].asleep && static_cast<int>(i) != keeper_) {
        wake_locked(worker_states_[i]);
        return;
      }
    }
    wake_keeper_locked();
  }
  // Wakes the keeper, or, without one, any sleeping worker (which becomes it). Under the lock.
  void wake_keeper_locked() noexcept {
    if (keeper_ >= 0 && worker_states_[static_cast<std::size_t>(keeper_)].asleep) {
      wake_locked(worker_states_[static_cast<std::size_t>(keeper_)]);
      return;
    }
    for (unsigned i = 0; i < worker_count_; ++i) {
      if (worker_states_[i].asleep) {
        wake_locked(worker_states_[i]);
        return;
      }
    }
  }
  void wake_locked(worker_state& w) noexcept {
    awake_locked(w);
    w.wake.notify_one();
  }
  void awake_locked(worker_state& w) noexcept {
    w.asleep = false;
    sleeping_.fetch_sub(1, std::memory_order_relaxed);
  }

  // Moves what threads that are not workers posted into worker `me`'s own queue, at most
  // room_for_a_look, without the lock. Before the shared queue is looked at, so the two are
  // taken in turn.
  void take_injected(worker_state& me) {
    std::coroutine_handle<> batch[fire_batch];
    for (std::size_t left = room_for_a_look(me); left != 0;) {
      const std::size_t wanted = std::min(left, fire_batch);
      const std::size_t n = injected_->take(batch, wanted);
      for (std::size_t i = 0; i < n; ++i) post_on_worker(me.queue, batch[i]);
      if (n < wanted) return;
      left -= n;
    }
  }

  // Moves a share of the shared queue into worker `me`'s own (under the lock). True if any.
  bool take_shared_locked(worker_state& me) {
    if (ready_.empty()) return false;
    const std::size_t share = std::max<std::size_t>(1, ready_.size() / worker_count_);
    std::size_t moved = 0;
    while (moved < share && moved < detail::work_queue::capacity / 2 && !ready_.empty() &&
           me.queue.push(ready_.front()) != detail::work_queue::pushed::full) {
      ready_.pop_front();
      ++moved;
    }
    // More than one item: another worker may as well steal some.
    if (moved > 1 || !ready_.empty()) wake_worker_locked();
    return moved != 0;
  }

  // The loop of worker `index`.
  void work(unsigned index) {
    worker_state& me = worker_states_[index];
    detail::driver_queue mine(this);
    mine.stealable = &me.queue;
    mine.worker = index;
    const driver_scope scope(&mine);
    for (;;) {
      {
        detail::trampoline here;
        // Fairness: after this many items of its own queue, a worker looks at the shared queue
        // and the timers before it goes on, so an endless stream of immediate retries on one
        // worker starves neither.
        for (int budget = 61; budget > 0 && !stopping_.load(std::memory_order_relaxed); --budget) {
          const std::coroutine_handle<> h = me.queue.pop();
          if (!h) break;
          here.resume(h);
        }
      }
      if (!find_work(index)) return;
    }
  }

  // What worker `index` does when its queue is empty, or its budget is spent: fires due timers,
  // takes from the shared queue, steals, or sleeps until someone wakes it. False once the
  // runtime stops.
  bool find_work(unsigned index) {
    worker_state& me = worker_states_[index];
    for (;;) {
      if (stopping_.load(std::memory_order_relaxed)) return false;
      fire_worker_timers(me, index);
      take_injected(me);
      std::unique_lock lock(mutex_);
      if (stopping_.load(std::memory_order_relaxed)) return false;
      fire_due_timers();
      if (take_shared_locked(me)) return true;
      if (!me.queue.empty()) {
        // The periodic look: a worker with work to spare wakes a sleeper to steal some (see
        // post_on_worker for why a push may not have).
        if (sleeping_.load(std::memory_order_relaxed) != 0 && me.queue.size_hint() > 1) wake_worker_locked();
        return true;
      }
      if (worker_count_ > 1) {
        lock.unlock();
        for (unsigned k = 1; k < worker_count_; ++k) {
          const std::uint32_t stolen = worker_states_[(index + k) % worker_count_].queue.steal_into(me.queue);
          if (stolen == 0) continue;
          if (stolen > 1) {
            // Work to spare: a sleeper may steal some of it (the fence pairs as in post_on_worker).
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (sleeping_.load(std::memory_order_relaxed) != 0) {
              lock.lock();
              wake_worker_locked();
            }
          }
          return true;
        }
        lock.lock();
        if (stopping_.load(std::memory_order_relaxed)) return false;
        fire_due_timers();
        if (take_shared_locked(me)) return true;
      }
      // To sleep. Announced first, then the others' queues are looked at once more: a worker
      // that pushed to its own queue meanwhile either sees this one asleep (and wakes it) or is
      // seen to have work (see post_on_worker). The same holds for a timer pushed onto a
      // worker's heap, which the decisions below read (see schedule_on_worker).
      me.asleep = true;
      sleeping_.fetch_add(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      bool work_elsewhere = !injected_->empty();
      for (unsigned k = 1; k < worker_count_ && !work_elsewhere; ++k)
        work_elsewhere = !worker_states_[(index + k) % worker_count_].queue.empty();
      if (work_elsewhere) {
        awake_locked(me);
        continue;
      }
      --active_;
      if (active_ == 0) {
        if (manual_ != nullptr && live_timers() != 0 && busy_ == 0 &&
            external_waits_.load(std::memory_order_relaxed) == 0) {
          // Every worker sleeps and nothing is out: virtual time jumps to the next timer.
          awake_locked(me);
          ++active_;
          manual_->advance_to(earliest_timer());
          continue;
        }
        if (idle_locked()) idle_.notify_all();
      }
      const bool keeps_time = manual_ == nullptr && live_timers() != 0 && keeper_ < 0;
      if (keeps_time) {
        keeper_ = static_cast<int>(index);
        const time_point due = earliest_timer();  // a copy: the heaps change while this thread waits
        keeper_due_.store(due.time_since_epoch().count(), std::memory_order_relaxed);
        me.wake.wait_until(lock, due, [&] { return !me.asleep || stopping_.load(std::memory_order_relaxed); });
        keeper_ = -1;
        keeper_due_.store(worker_timers::none, std::memory_order_relaxed);
      } else {
        me.wake.wait(lock, [&] { return !me.asleep || stopping_.load(std::memory_order_relaxed); });
      }
      if (me.asleep) awake_locked(me);  // timed out, or stopping
      ++active_;
      // Someone else keeps time now, if timers are left and anyone sleeps.
      if (keeps_time && live_timers() != 0) wake_keeper_locked();
    }
  }

  // Nothing ready, no timer, no external wait, and no thread running work (under the lock).
  [[nodiscard]] bool idle_locked() const noexcept {
    // busy_ counts a thread that polls a runtime with workers, too (`poll` does not refuse it).
    return ready_.empty() && live_timers() == 0 && external_waits_.load(std::memory_order_relaxed) == 0 &&
           busy_ == 0 && (worker_count_ == 0 || (active_ == 0 && injected_->empty()));
  }

  // Runs queued work on this thread until `done`, or, with no flag, until idle (or, for a
  // worker, until the runtime stops).
  // Makes a queue this thread's driver queue, and restores the one before even if something
  // throws.
  struct driver_scope {
    detail::driver_queue* outer;
    explicit driver_scope(detail::driver_queue* q) noexcept : outer(std::exchange(detail::current_driver, q)) {}
    ~driver_scope() { detail::current_driver = outer; }
    driver_scope(const driver_scope&) = delete;
    driver_scope& operator=(const driver_scope&) = delete;
  };

  void drive(const bool* done) {
    detail::driver_queue mine(this);
    const driver_scope scope(&mine);
    detail::trampoline here;
    std::unique_lock lock(mutex_);
    for (;;) {
      if (done != nullptr ? *done : false) break;
      if (!ready_.empty()) {
        const std::coroutine_handle<> h = ready_.front();
        ready_.pop_front();
        run_on_this_thread(h, mine, here, lock);
        continue;
      }
      if (fire_timers(lock)) continue;
      if (done == nullptr && busy_ == 0 && external_waits_ == 0) break;
      wait_woken(lock);  // the task waits on something outside the runtime
    }
  }

  // What a thread's own queue still holds goes to the shared queue, and the external waits it
  // ended leave the count. Under the lock.
  void merge_locked(detail::driver_queue& mine) {
    while (!mine.empty()) ready_.push_back(mine.pop());
    // Skipped when zero, as it nearly always is: a locked RMW per item is a fence per item.
    if (mine.ended_waits != 0) external_waits_.fetch_sub(std::exchange(mine.ended_waits, 0), std::memory_order_relaxed);
  }

  // poll's work, from the lock on.
  std::optional<time_point> poll_locked(detail::driver_queue& mine, std::unique_lock<std::mutex>& lock) {
    detail::trampoline here;
    for (int budget = 256; budget > 0; --budget) {
      if (ready_.empty() && !fire_due_timers()) break;
      const std::coroutine_handle<> h = ready_.front();
      ready_.pop_front();
      run_on_this_thread(h, mine, here, lock);
    }
    if (!ready_.empty()) work_arrived();
    drop_cancelled_timers();
    if (timers_.empty()) return std::nullopt;
    return timers_.top().when;
  }

  // Runs `h` and then what it posted to this thread's own queue. The thread counts as busy
  // meanwhile, so a manual clock does not jump while it still has work.
  // `here` is the caller's, made once for all the items it runs (not once per item: a timer
  // fired and resumed costs about 5% less).
  void run_on_this_thread(std::coroutine_handle<> h, detail::driver_queue& mine, detail::trampoline& here,
                          std::unique_lock<std::mutex>& lock) {
    ++busy_;
    lock.unlock();
    here.resume(h);
    // Bounded, so that an endless stream of immediate retries (each item here runs up to
    // retry_state::inline_retries attempts) cannot starve the shared queue and the timers;
    // what is left goes to the shared queue.
    for (int budget = 256; !mine.empty() && budget > 0; --budget) here.resume(mine.pop());
    lock.lock();
    merge_locked(mine);
    --busy_;
    // Other threads driving this runtime may be asleep: wake them if there is work they can
    // take, or if the manual clock may now jump (it waits for every thread to be idle).
    if (drivers_waiting_ != 0 && (!ready_.empty() || (busy_ == 0 && live_timers() != 0))) wake_.notify_all();
    // run_until_idle may be waiting: wake it only when its condition holds, not after every item
    // (with one worker, busy_ is 0 after each one).
    if (busy_ == 0 && worker_count_ != 0 && ready_.empty() && live_timers() == 0) idle_.notify_all();
  }

  // First, so that it ends last: after the workers exit and the unfinished roots are freed.
  detail::depot_tenancy depot_tenancy_;
  manual_clock* manual_ = nullptr;
  std::chrono::nanoseconds shutdown_grace_;
  std::function<void()> work_available_;    // set once, before any work
  detail::mersenne_twister_64 rng_;
  std::atomic<callback_node*> first_callback_{nullptr};
  callback_node* last_callback_ = nullptr;  // under mutex_

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // threads that run work wait here
  std::condition_variable idle_;  // with workers: `run` and `run_until_idle` wait here
  detail::handle_fifo ready_;
  // With workers: what threads that are not workers post, taken by the workers without the lock
  // (the shared queue above when it is full).
  std::unique_ptr<detail::inject_queue> injected_;
  // The context of every spawned root that nothing can stop (read only).
  detail::call_context unstoppable_{this, {}};
  timer_heap timers_;
  static constexpr std::size_t min_sweep = 64;  // a sweep walks the heap: not for a handful
  std::uint64_t next_timer_seq_ = 0;
  std::size_t cancelled_timers_ = 0;  // entries of `timers_` whose wait was cancelled
  std::unique_ptr<root_list[]> root_lists_;  // root_list_count() of them
  int busy_ = 0;                 // threads driving a runtime without workers that run an item
  std::size_t drivers_waiting_ = 0;  // threads in wait_woken (under mutex_)
  std::size_t walked_away_ = 0;  // attempts walked away from that have not ended
  std::atomic<std::size_t> external_waits_{0};  // tasks suspended in a durable::completion
  std::atomic<bool> stopping_{false};            // written under the lock; workers peek between items

  std::unique_ptr<worker_state[]> worker_states_;
  unsigned worker_count_ = 0;       // set before the workers start, never changed
  int active_ = 0;                  // under mutex_: workers not asleep
  int keeper_ = -1;                 // under mutex_: the worker asleep until the next timer, if any
  // When the keeper wakes (ns since the epoch), or worker_timers::none without a keeper: written
  // under mutex_, read without it by a worker that scheduled a timer, to learn whether the
  // keeper must wake for it.
  std::atomic<std::int64_t> keeper_due_{worker_timers::none};
  // Workers asleep (exact under mutex_; read without it by a worker that pushed to its own
  // queue, after a seq_cst fence, to learn whether to wake one).
  std::atomic<unsigned> sleeping_{0};
  std::vector<std::thread> workers_;  // last: started after every other member exists
};

namespace detail {
inline void cancellable_wait::canceller::operator()() const noexcept { rt->cancel(*wait); }
}  // namespace detail

}  // namespace durable
