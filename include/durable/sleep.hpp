// durable/sleep.hpp — waiting on purpose, on the runtime's clock.
#pragma once

#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <type_traits>

#include "clock.hpp"
#include "detail/context.hpp"
#include "detail/journal_scope.hpp"
#include "detail/stoppable_wait.hpp"
#include "error.hpp"
#include "runtime.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// Suspends a durable task until a time on its runtime's clock (virtual on a manual clock).
/// Even a time already past goes through the runtime's queue, so other work runs first. A stop
/// request ends the sleep at once with a `durable::failure` whose reason is `cancelled`.
class sleep_awaiter {
 public:
  using durable_library_awaiter = void;
  sleep_awaiter(time_point until, std::chrono::nanoseconds duration, bool relative) noexcept
      : until_(until), for_(duration), relative_(relative) {}

  bool await_ready() const noexcept { return false; }

  // noinline: once published, the handle may be resumed (and the frame freed) by another
  // thread; clang <= 18 may otherwise still write to the frame afterwards (llvm 56301).
  template <class Promise>
  [[gnu::noinline]] bool await_suspend(std::coroutine_handle<Promise> h) {
    static_assert(std::is_base_of_v<promise_base, Promise>,
                  "durable::sleep_for / sleep_until can only be awaited in a durable_task");
    const call_context* ctx = h.promise().context();
    runtime* rt = ctx != nullptr ? ctx->rt : nullptr;
    if (rt == nullptr) {
      throw std::logic_error("durable::sleep_for / sleep_until: the task is not running on a durable::runtime");
    }
    stop_ = ctx->stop;
    time_point wake = relative_ ? add_saturating(rt->now(), for_) : until_;
    if (ctx->scope != nullptr) {
      // In a journaled invocation a sleep has a path like a call: after a restart it ends at
      // the time its first run recorded, not after a fresh interval.
      wake = ctx->scope->journaled_wake(wake);
      // A long sleep of the body itself (nothing else of the invocation runs) may park it: the
      // run ends here, and the store wakes the invocation when the time comes.
      if (ctx->scope->park_until(wake, rt->now())) {
        parked_ = true;
        return false;
      }
    }
    return wait_.suspend(*rt, stop_, wake, h);
  }

  void await_resume() {
    if (parked_) throw journal_failure(1, {}, nullptr, "the invocation is parked until its sleep ends");
    // A stop requested after the timer fired counts too: cancellation is checked after each wait.
    if (wait_.resume() || (stop_ != nullptr && stop_->stop_requested()))
      throw cancelled_failure(status::permanent_error, 1, {}, "the sleep was cancelled");
  }

 private:
  stoppable_wait wait_;
  const std::stop_token* stop_ = nullptr;
  time_point until_;
  std::chrono::nanoseconds for_;
  bool relative_;
  bool parked_ = false;
};

}  // namespace detail

/// `co_await durable::sleep_for(d);` resumes the task after `d` on its runtime's clock, without
/// blocking a thread. A zero or negative `d` still lets other ready work run first.
[[nodiscard]] inline detail::sleep_awaiter sleep_for(std::chrono::nanoseconds d) noexcept {
  return {time_point{}, d, true};
}

/// `co_await durable::sleep_until(t);` resumes the task once the runtime's clock reaches `t`.
[[nodiscard]] inline detail::sleep_awaiter sleep_until(time_point t) noexcept {
  return {t, std::chrono::nanoseconds::zero(), false};
}

}  // namespace durable
