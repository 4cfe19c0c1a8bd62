// durable/completion.hpp — awaiting work that another library completes, from any thread.
//
//   int n = co_await durable::completion<int>([&](durable::completer<int> done) {
//     pool.submit([done = std::move(done)]() mutable { done.set_value(42); });
//   });
//
// The task suspends; `initiate` starts the foreign work and hands it the completer; whoever
// finishes that work calls `set_value` or `set_exception` on it, from any thread, once. The
// task then resumes on its runtime (a worker, or the thread in `run`), never on the completing
// thread.
//
// A stop request (or an `attempt_timeout`) reaches the foreign side through
// `completer::stop_token()`: it should cancel its work and complete promptly (with anything;
// the task then ends with a cancellation, whatever it was completed with). The task keeps
// waiting until it does, because the foreign work may still be using what the task owns (a
// buffer in its frame): so the wait is a foreign awaitable, and a call that walks away from
// the attempt detaches it (see README, "Running many calls at once"). The completer owns only
// a small shared state: completing late, even after the runtime destroyed the waiting task at
// shutdown, touches nothing else.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "detail/context.hpp"
#include "detail/frame_pool.hpp"
#include "error.hpp"
#include "runtime.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// What a completion's awaiter and its completer share. `phase` decides who ends the wait:
///   initiating -> waiting                 (the awaiter, once `initiate` returned and it suspends)
///   initiating -> resuming -> settled     (completed inside `initiate`: the awaiter does not
///                                          suspend)
///   waiting -> resuming -> settled        (completed later: the completer posts the task; or
///                                          abandoned by the awaiter's destructor at shutdown)
/// The winner of the move to `resuming` writes `outcome` and, if the task is suspended, posts
/// it to its runtime; then it publishes `settled`. The awaiter reads `outcome` only once the
/// post (through the runtime's lock) or `settled` made it visible. `resuming` also covers the
/// post: the awaiter's destructor (the runtime destroying a suspended frame at shutdown) waits
/// it out, so nobody posts to a runtime that is gone.
template <class T>
struct completion_state {
  enum : std::uint8_t { initiating, waiting, resuming, settled };
  enum : std::uint8_t { none, completed, cancelled };
  using stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  std::atomic<std::uint8_t> phase{initiating};
  std::atomic<std::uint8_t> outcome{none};
  std::atomic<int> refs{2};  // the awaiter and the completer
  runtime* rt = nullptr;
  std::coroutine_handle<> handle;
  std::stop_token stop;
  std::optional<stored> value;  // written by the completer before it tries to settle
  std::exception_ptr error;

  // From the frame pool (a state freed on the completing thread joins that thread's lists).
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// Ends the wait with `how` (completed, or cancelled by the awaiter's destructor) unless it
  /// has ended already. True if this caller won.
  bool settle(std::uint8_t how) noexcept {
    // Loaded first: a completion usually comes once the task waits, and a failed exchange from
    // `initiating` would cost as much as the one that succeeds.
    std::uint8_t was = phase.load(std::memory_order_acquire);
    if (was == initiating && phase.compare_exchange_strong(was, resuming, std::memory_order_acq_rel)) {
      outcome.store(how, std::memory_order_relaxed);
      phase.store(settled, std::memory_order_release);  // the awaiter, in await_suspend, waits for it
      return true;
    }
    if (was != waiting || !phase.compare_exchange_strong(was, resuming, std::memory_order_acq_rel)) return false;
    outcome.store(how, std::memory_order_relaxed);
    rt->end_external_wait(handle);  // its lock orders the store before the task's resumption
    phase.store(settled, std::memory_order_release);
    return true;
  }

  /// Waits out a winner between `resuming` and `settled` (a few instructions, or one post).
  void wait_until_settled() const noexcept {
    while (phase.load(std::memory_order_acquire) != settled) {
    }
  }
};

}  // namespace detail

/// The completing side of a `completion<T>`: move-only, and completed once, from any thread.
/// Destroyed without completing, it completes the wait with a `std::logic_error` (retried as
/// any exception the error table maps).
template <class T = void>
class completer {
 public:
  completer(completer&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  completer& operator=(completer&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  completer(const completer&) = delete;
  completer& operator=(const completer&) = delete;
  ~completer() {
    if (state_ != nullptr) abandon();  // inline: an Asio handler is moved, and so destroyed, often
  }

  /// Completes with a value: the task's `co_await` returns it.
  template <class U = T>
    requires(!std::is_void_v<T> && std::is_constructible_v<T, U &&>)
  void set_value(U&& value) {
    if (auto* s = take("set_value")) {
      if (s->outcome.load(std::memory_order_relaxed) != state::cancelled) s->value.emplace(std::forward<U>(value));
      finish(s);
    }
  }
  /// Completes a `completion<void>`.
  void set_value()
    requires std::is_void_v<T>
  {
    if (auto* s = take("set_value")) {
      s->value.emplace();
      finish(s);
    }
  }
  /// Completes with an exception: the task's `co_await` throws it, and the error table
  /// classifies it like any other.
  void set_exception(std::exception_ptr error) {
    if (error == nullptr) throw std::invalid_argument("durable::completer::set_exception: a null exception_ptr");
    if (auto* s = take("set_exception")) {
      s->error = std::move(error);
      finish(s);
    }
  }
  /// Completes with `std::system_error(code, what)`.
  void set_error(std::error_code code, const std::string& what = {}) {
    // Its own statement: the temporary system_error (which shares its message buffer with the
    // stored copy) dies before the task can have the exception.
    std::exception_ptr error = std::make_exception_ptr(std::system_error(code, what));
    set_exception(std::move(error));
  }

  /// The waiting task's stop token: ask it, or register a `std::stop_callback` on it, to cancel
  /// the foreign work (and then complete promptly) when the task is asked to stop.
  [[nodiscard]] std::stop_token stop_token() const noexcept { return state_ ? state_->stop : std::stop_token{}; }
  /// True once the task was asked to stop, or is gone: it will not use a value any more (it
  /// still waits to be completed, unless it is gone).
  [[nodiscard]] bool cancelled() const noexcept {
    return state_ == nullptr || state_->stop.stop_requested() ||
           state_->outcome.load(std::memory_order_acquire) == state::cancelled;
  }

 private:
  using state = detail::completion_state<T>;
  template <class U, class Initiate>
  friend class completion_awaiter;
  explicit completer(state* s) noexcept : state_(s) {}

  state* take(const char* what) {
    if (state_ == nullptr) {
      throw std::logic_error(std::string("durable::completer::") + what + ": completed already (or moved from)");
    }
    return std::exchange(state_, nullptr);
  }
  static void finish(state* s) noexcept {
    s->settle(state::completed);
    s->release();
  }
  [[gnu::noinline]] void abandon() noexcept {
    if (state* s = std::exchange(state_, nullptr)) {
      try {
        s->error = std::make_exception_ptr(std::logic_error("durable::completer destroyed without completing"));
      } catch (...) {
        s->error = std::current_exception();
      }
      finish(s);
    }
  }

  state* state_;
};

/// The awaiter of `durable::completion`. Not one of the library's own awaitables: only the
/// foreign side can end the wait, so a call that walks away from the attempt detaches it.
template <class T, class Initiate>
class completion_awaiter {
 public:
  explicit completion_awaiter(Initiate initiate) : initiate_(std::move(initiate)) {}
  completion_awaiter(completion_awaiter&& other) noexcept
      : initiate_(std::move(other.initiate_)), state_(std::exchange(other.state_, nullptr)) {}
  completion_awaiter(const completion_awaiter&) = delete;
  completion_awaiter& operator=(const completion_awaiter&) = delete;
  completion_awaiter& operator=(completion_awaiter&&) = delete;

  ~completion_awaiter() {
    if (state_ == nullptr) return;
    // Only reached suspended when the runtime destroys the frame at shutdown: the wait ends
    // here, and a completer posting right now is waited out.
    std::uint8_t was = state::waiting;
    if (state_->phase.compare_exchange_strong(was, state::resuming, std::memory_order_acq_rel)) {
      state_->outcome.store(state::cancelled, std::memory_order_relaxed);
      state_->phase.store(state::settled, std::memory_order_release);
    } else {
      state_->wait_until_settled();
    }
    state_->release();
  }

  bool await_ready() const noexcept { return false; }

  // noinline: once the completer may resume the task (on another thread), this frame must not
  // be written to (llvm 56301, see sleep.hpp).
  template <class Promise>
  [[gnu::noinline]] bool await_suspend(std::coroutine_handle<Promise> h) {
    static_assert(std::is_base_of_v<detail::promise_base, Promise>,
                  "durable::completion can only be awaited in a durable_task");
    const detail::call_context* ctx = h.promise().context();
    runtime* rt = ctx != nullptr ? ctx->rt : nullptr;
    if (rt == nullptr) throw std::logic_error("durable::completion: the task is not running on a durable::runtime");
    state_ = new state;
    state_->rt = rt;
    state_->handle = h;
    if (ctx->stop != nullptr) state_->stop = *ctx->stop;
    if (state_->stop.stop_requested()) {
      state_->outcome.store(state::cancelled, std::memory_order_relaxed);
      state_->phase.store(state::settled, std::memory_order_relaxed);
      state_->release();  // the completer's reference: there is none
      return false;
    }
    rt->begin_external_wait();
    initiate_(completer<T>(state_));  // may complete before it returns
    std::uint8_t was = state::initiating;
    if (state_->phase.compare_exchange_strong(was, state::waiting, std::memory_order_acq_rel)) return true;
    state_->wait_until_settled();  // completed already: go on without suspending
    rt->end_external_wait({});
    return false;
  }

  T await_resume() {
    state* s = std::exchange(state_, nullptr);
    struct release_on_exit {
      state* s;
      ~release_on_exit() { s->release(); }
    } releaser{s};
    // A stop requested before it was completed wins, whatever it was completed with (the
    // foreign side's cancellation error, or a value that came too late), as after a sleep.
    if (s->outcome.load(std::memory_order_relaxed) == state::cancelled || s->stop.stop_requested()) {
      throw detail::cancelled_failure(status::permanent_error, 1, {}, "the wait for a completion was cancelled");
    }
    // Taken out of the state, so that the last reference to the exception (and the value's
    // resources) is dropped on this thread, not by a completer releasing the state later.
    if (std::exception_ptr error = std::exchange(s->error, nullptr)) std::rethrow_exception(std::move(error));
    if constexpr (!std::is_void_v<T>) {
      T value = std::move(*s->value);
      s->value.reset();
      return value;
    }
  }

 private:
  using state = detail::completion_state<T>;

  Initiate initiate_;
  state* state_ = nullptr;
};

/// Awaits work completed by another library: `initiate(completer<T>)` starts it and must hand
/// the completer to whatever will complete it (or complete it at once). See the top of this
/// file. `initiate` runs inside the `co_await`, on the task's thread.
template <class T = void, class Initiate>
  requires std::is_invocable_v<Initiate&, completer<T>>
[[nodiscard]] completion_awaiter<T, std::decay_t<Initiate>> completion(Initiate&& initiate) {
  return completion_awaiter<T, std::decay_t<Initiate>>(std::forward<Initiate>(initiate));
}

}  // namespace durable
