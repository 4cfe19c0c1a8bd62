// durable/detail/stoppable_wait.hpp — a wait on the runtime's clock that a stop request ends.
#pragma once

#include <coroutine>
#include <optional>
#include <stop_token>
#include <utility>

#include "../clock.hpp"
#include "../runtime.hpp"

namespace durable::detail {

/// The waiting part of the library's awaiters (sleeps, retry waits). Work that nothing can
/// stop uses a plain runtime timer; under a stop token that can be stopped, the timer is a
/// `cancellable_wait` and a stop request queues the waiter at once.
class stoppable_wait {
 public:
  stoppable_wait() noexcept = default;
  stoppable_wait(const stoppable_wait&) = delete;
  stoppable_wait& operator=(const stoppable_wait&) = delete;
  /// Only reached with a wait still held when the runtime destroys a suspended frame.
  ~stoppable_wait() { finish(); }

  /// Suspends `h` until `when`. Returns false when a stop was requested already: the caller
  /// must not suspend, and `resume()` will say it was stopped. Once this returns true, `h` may
  /// be running on another thread: the caller must not touch its frame any more.
  bool suspend(runtime& rt, const std::stop_token* stop, time_point when, std::coroutine_handle<> h) {
    if (stop == nullptr || !stop->stop_possible()) {
      rt.schedule_at(when, h);
      return true;
    }
    if (stop->stop_requested()) {
      stopped_early_ = true;
      return false;
    }
    wait_ = cancellable_wait::make(h, 1);
    wait_->rt = &rt;
    // Registered before arming: a stop requested meanwhile runs the canceller right here,
    // which marks the wait cancelled so that `arm` refuses it.
    wait_->on_stop.emplace(*stop, cancellable_wait::canceller{&rt, wait_});
    return rt.arm(*wait_, when);
  }

  /// After the waiter resumed (or did not suspend): true if a stop request ended the wait.
  [[nodiscard]] bool resume() noexcept {
    if (wait_ == nullptr) return std::exchange(stopped_early_, false);  // ready for another wait
    const bool stopped = wait_->st == cancellable_wait::state::cancelled;
    finish();
    return stopped;
  }

 private:
  void finish() noexcept {
    if (wait_ == nullptr) return;
    // Waits for a canceller running on another thread to return, so none can run after this.
    wait_->on_stop.reset();
    wait_->rt->release(wait_);
    wait_ = nullptr;
  }

  // Two words, not three: the runtime is kept in the wait, which exists only when stoppable, so
  // that a call suspended for its retry carries as little as possible (see benchmarks/memory).
  cancellable_wait* wait_ = nullptr;
  bool stopped_early_ = false;
};

}  // namespace durable::detail
