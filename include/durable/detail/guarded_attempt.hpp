// durable/detail/guarded_attempt.hpp — an attempt that its call can walk away from.
//
// An attempt normally runs inline: the call's frame awaits it. That cannot survive an
// `attempt_timeout` or a stop request while the attempt is suspended in an awaitable the
// library does not own (a socket read): such a frame cannot be destroyed safely, and the call
// must go on at once. So when a call can be stopped or has an attempt timeout, each attempt
// runs as its own root on the runtime, with its own copy of the arguments and its own stop
// source, and the call waits for whichever comes first: the attempt's outcome, the timeout,
// or its own stop request. When the call walks away, it asks the attempt to stop (the
// library's waits inside it end at once) and then waits for the attempt to end, so that its
// frames and argument copy are gone before the call goes on; unless the attempt is suspended
// in a foreign awaitable (it tells its `attempt_tracker` when it suspends in one), which no
// one can end from here: then the attempt is detached, left to finish in the background, its
// result discarded and its frame freed when it ends. It never touches the call again: what the
// two share (`attempt_join`) is reference-counted.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "../error.hpp"
#include "../runtime.hpp"
#include "../status.hpp"
#include "../task.hpp"
#include "context.hpp"
#include "journal_scope.hpp"
#include "result.hpp"

namespace durable::detail {

/// What an attempt fails with when the callable returned an empty task. (Not built inline in
/// run_call: every local of a coroutine takes room in its frame for its whole life.)
[[nodiscard]] inline fault_ptr empty_task_fault() noexcept {
  return make_fault_with([] {
    fault f;
    f.code = status::invalid_argument;
    f.message = "the callable of a durable call returned an empty durable_task";
    return f;
  });
}

/// What a call and an attempt running in the background share; freed by the last of the two.
template <class T>
struct attempt_join final : attempt_tracker {
  attempt_join(runtime& r, cancellable_wait* w, cancellable_wait* s) noexcept : rt(&r), wait(w), settled(s) {}
  attempt_join(const attempt_join&) = delete;
  attempt_join& operator=(const attempt_join&) = delete;
  ~attempt_join() {
    if (wait != nullptr) rt->release(wait);
    if (settled != nullptr) rt->release(settled);
  }

  // The outcome is read only if it was delivered, and only after it was written (the attempt
  // writes it before its release-CAS of `state`; the call reads it after an acquire load).
  std::atomic<std::uint8_t> refs{2};
  runtime* rt;
  /// The call's wait for the first of outcome, timeout and stop: cancelled by the attempt when
  /// it delivers. Kept alive by this join.
  cancellable_wait* wait;
  /// The call's wait, once it walked away, for the attempt to end or to suspend in a foreign
  /// awaitable. Kept alive by this join.
  cancellable_wait* settled;
  result<T> outcome;
  std::stop_source source;
  /// What the attempt's context points at.
  stop_scope token{source.get_token(), this};

  void release() noexcept {
    // acq_rel: the side that frees sees everything the other side wrote.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  /// `release`, under the runtime's lock (the attempt's last step, end_background_attempt).
  void release_locked(runtime& r) noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    r.release_locked(std::exchange(wait, nullptr));
    r.release_locked(std::exchange(settled, nullptr));
    delete this;
  }

 private:
  void wake_walked_away() noexcept override { rt->cancel(*settled); }
};

/// Owns one reference to an attempt_join (released even if a frame holding it is destroyed
/// while suspended, as the runtime does at shutdown).
template <class T>
class join_ref {
 public:
  explicit join_ref(attempt_join<T>* j) noexcept : join_(j) {}
  join_ref(join_ref&& other) noexcept : join_(std::exchange(other.join_, nullptr)) {}
  join_ref& operator=(join_ref&&) = delete;
  ~join_ref() {
    if (join_ != nullptr) join_->release();
  }
  attempt_join<T>* operator->() const noexcept { return join_; }
  [[nodiscard]] attempt_join<T>* get() const noexcept { return join_; }
  /// Gives up the reference without releasing it: the caller releases it.
  [[nodiscard]] attempt_join<T>* take() noexcept { return std::exchange(join_, nullptr); }

 private:
  attempt_join<T>* join_;
};

/// The attempt, as a root of its own: makes it from its own copy of the arguments, runs it
/// under the join's stop token, and hands its outcome to the call if the call still waits.
template <class Task, class F, class... Args>
root_task run_attempt_in_background(join_ref<typename Task::value_type> join, F callable,
                                    std::tuple<Args...> args, std::string_view name, scope_ref scope) {
  using T = typename Task::value_type;
  using Policy = typename Task::policy_type;
  {
    Task attempt;
    try {
      attempt = std::apply(
          [&callable](Args&... a) { return std::invoke(std::as_const(callable), std::move(a)...); }, args);
    } catch (...) {  // calling the callable threw
      join->outcome.emplace_fault([] { return fault_from_current_exception<Policy>(); });
    }
    if (attempt.valid()) {
      call_context context{join->rt, name, &join->token, scope.get()};
      result<T>& out = co_await outcome_awaiter<T, Policy>{attempt.handle(), &context};
      join->outcome.take_from(out);
    } else if (!join->outcome.has_fault()) {
      join->outcome.set_fault(empty_task_fault());
    }
  }  // the attempt's frames are gone before the call can see its outcome, or that it ended
  { const scope_ref done = std::move(scope); }
  runtime* rt = join->rt;
  std::uint8_t expected = attempt_tracker::running;
  const bool delivered =
      join->state.compare_exchange_strong(expected, attempt_tracker::delivered, std::memory_order_seq_cst);
  attempt_join<T>* shared = join.take();
  // The last touch of the runtime and of the join: a call that walked away may be gone, and
  // once the count of walked-away attempts drops, so may the runtime (its destructor drains).
  // The call's wait to end: the one for its outcome, or, once it walked away, the one for the
  // attempt to settle (end_background_attempt notifies the thread that will run it).
  rt->end_background_attempt(co_await root_probe{}, !delivered, [shared, delivered](runtime& r) noexcept {
    static_cast<void>(r.cancel_locked(delivered ? *shared->wait : *shared->settled));
    shared->release_locked(r);
  });
}

/// The call's side: starts the attempt in the background and waits for the first of its
/// outcome, the attempt timeout and the call's own stop request.
template <class T>
class attempt_watch {
 public:
  attempt_watch(call_context& call, std::chrono::nanoseconds timeout) : call_(call), timeout_(timeout) {}
  attempt_watch(const attempt_watch&) = delete;
  attempt_watch& operator=(const attempt_watch&) = delete;
  ~attempt_watch() {
    if (runner_) runner_.destroy();  // made but never started
    if (wait_ != nullptr) {
      wait_->on_stop.reset();
      call_.rt->release(wait_);
      call_.rt->release(settled_);
    }
    if (join_ != nullptr) join_->release();
  }

  /// Makes the background attempt (copying the callable and the arguments, which may throw).
  template <class Task, class F, class... Args>
  void prepare(const F& callable, const std::tuple<Args...>& args) {
    runtime& rt = *call_.rt;
    wait_ = cancellable_wait::make({}, 2);  // each held by this watch and by the join
    settled_ = cancellable_wait::make({}, 2);
    join_ = new attempt_join<T>(rt, wait_, settled_);
    join_ref<T> for_attempt(join_);
    scope_ref scope;
    if (call_.scope != nullptr) {
      call_.scope->retain();
      scope = scope_ref(call_.scope);
    }
    runner_ = run_attempt_in_background<Task>(std::move(for_attempt), callable, args, call_.name, std::move(scope)).handle;
  }

  using durable_library_awaiter = void;
  bool await_ready() const noexcept { return false; }
  // noinline: once armed, this frame may be resumed and freed on another thread (llvm 56301).
  [[gnu::noinline]] bool await_suspend(std::coroutine_handle<> h) {
    runtime& rt = *call_.rt;
    wait_->handle = h;
    if (call_.stop != nullptr && call_.stop->stop_possible()) {
      wait_->on_stop.emplace(*call_.stop, cancellable_wait::canceller{&rt, wait_});
    }
    rt.adopt(root_task{std::exchange(runner_, {})});
    std::optional<time_point> deadline;
    if (timeout_ > std::chrono::nanoseconds::zero()) deadline = add_saturating(rt.now(), timeout_);
    return rt.arm(*wait_, deadline);
  }
  void await_resume() noexcept {
    wait_->on_stop.reset();  // waits for a canceller running on another thread
    std::uint8_t expected = attempt_tracker::running;
    if (join_->state.compare_exchange_strong(expected, attempt_tracker::abandoned, std::memory_order_seq_cst)) {
      stopped_ = call_.stop_requested();
      // From now on the attempt must never write to its invocation's journal: the call goes on
      // (and may finish the invocation) without it.
      if (call_.scope != nullptr) call_.scope->abandon();
      call_.rt->walked_away_from_attempt();
      join_->source.request_stop();  // the library's waits inside the attempt end now
    }
  }

  /// After walking away: waits until the attempt has ended (its frames freed), unless it is
  /// suspended in a foreign awaitable, which cannot be ended from here: then it is detached at
  /// once (or as soon as it suspends in one). Does not suspend if the attempt delivered.
  class settle_awaiter {
   public:
    using durable_library_awaiter = void;
    explicit settle_awaiter(attempt_watch& watch) noexcept : watch_(watch) {}
    bool await_ready() const noexcept {
      const attempt_join<T>& join = *watch_.join_;
      return join.state.load(std::memory_order_seq_cst) != attempt_tracker::abandoned ||
             join.foreign.load(std::memory_order_seq_cst) != 0;
    }
    // noinline: once armed, this frame may be resumed and freed on another thread (llvm 56301).
    [[gnu::noinline]] bool await_suspend(std::coroutine_handle<> h) {
      cancellable_wait& settled = *watch_.settled_;
      settled.handle = h;
      return watch_.call_.rt->arm(settled, std::nullopt);  // false: it ended or went foreign already
    }
    void await_resume() const noexcept {}

   private:
    attempt_watch& watch_;
  };
  [[nodiscard]] settle_awaiter settled() noexcept { return settle_awaiter(*this); }

  /// The attempt's outcome, or null when the call walked away from it.
  [[nodiscard]] result<T>* outcome() noexcept {
    return join_->state.load(std::memory_order_acquire) == attempt_tracker::delivered ? &join_->outcome : nullptr;
  }

  /// Why the call walked away: its own stop request, or the attempt timeout.
  [[nodiscard]] fault_ptr walked_away() const noexcept {
    if (stopped_) {
      return make_fault_with([] {
        fault f;  // the call gives it the status of the attempt that failed last
        f.message = "the attempt was cancelled while it was running";
        f.final = true;
        f.reason = failure_reason::cancelled;
        return f;
      });
    }
    return make_fault_with([timeout = timeout_] {
      using std::chrono::milliseconds;
      fault f;
      f.code = status::timeout;
      f.reason = failure_reason::attempt_timeout;  // retried like any timeout; events say why
      f.message = "the attempt did not finish within its attempt_timeout of ";
      if (timeout % milliseconds(1) == std::chrono::nanoseconds::zero()) {
        f.message += std::to_string(std::chrono::duration_cast<milliseconds>(timeout).count()) + " ms";
      } else {
        f.message += std::to_string(timeout.count()) + " ns";
      }
      return f;
    });
  }

 private:
  call_context& call_;
  std::chrono::nanoseconds timeout_;
  cancellable_wait* wait_ = nullptr;
  cancellable_wait* settled_ = nullptr;
  attempt_join<T>* join_ = nullptr;
  std::coroutine_handle<root_task::promise_type> runner_;
  bool stopped_ = false;
};

}  // namespace durable::detail
