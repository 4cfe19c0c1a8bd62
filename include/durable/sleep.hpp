// durable/sleep.hpp — waiting on purpose, on the runtime's clock.
#pragma once

#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <type_traits>

#include "clock.hpp"
#include "detail/context.hpp"
#include "runtime.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// Suspends a durable task until a time on its runtime's clock (virtual on a manual clock).
/// Even a time already past goes through the runtime's queue, so other work runs first.
class sleep_awaiter {
 public:
  sleep_awaiter(time_point until, std::chrono::nanoseconds duration, bool relative) noexcept
      : until_(until), for_(duration), relative_(relative) {}

  bool await_ready() const noexcept { return false; }

  // noinline: once published, the handle may be resumed (and the frame freed) by another
  // thread; clang <= 18 may otherwise still write to the frame afterwards (llvm 56301).
  template <class Promise>
  [[gnu::noinline]] void await_suspend(std::coroutine_handle<Promise> h) const {
    static_assert(std::is_base_of_v<promise_base, Promise>,
                  "durable::sleep_for / sleep_until can only be awaited in a durable_task");
    runtime* rt = h.promise().ctx != nullptr ? h.promise().ctx->rt : nullptr;
    if (rt == nullptr) {
      throw std::logic_error("durable::sleep_for / sleep_until: the task is not running on a durable::runtime");
    }
    rt->schedule_at(relative_ ? add_saturating(rt->now(), for_) : until_, h);
  }

  void await_resume() const noexcept {}

 private:
  time_point until_;
  std::chrono::nanoseconds for_;
  bool relative_;
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
