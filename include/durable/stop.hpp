// durable/stop.hpp — cancellation as a task sees it.
#pragma once

#include <coroutine>
#include <stop_token>
#include <type_traits>

#include "detail/context.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// Yields the stop token of the awaiting task without suspending it.
class stop_token_probe {
 public:
  using durable_library_awaiter = void;
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    static_assert(std::is_base_of_v<promise_base, Promise>,
                  "durable::this_stop_token can only be awaited in a durable_task");
    const call_context* ctx = self.promise().context();
    if (ctx != nullptr && ctx->stop != nullptr) token_ = *ctx->stop;
    return false;
  }
  std::stop_token await_resume() noexcept { return std::move(token_); }

 private:
  std::stop_token token_;
};

/// The type of `durable::this_stop_token`.
struct this_stop_token_t {
  using durable_library_awaiter = void;
  stop_token_probe operator co_await() const noexcept { return {}; }
};

}  // namespace detail

/// `std::stop_token t = co_await durable::this_stop_token;` gives the running task the token
/// that asks it to stop: a stop requested through `run`/`spawn`, an attempt that ran past its
/// `attempt_timeout`, or a fan-out (`gather`, `any`, `race`) that no longer needs it. Pass it
/// to your own I/O so that it ends promptly too. A token that can never be stopped (empty)
/// when nothing can stop the task.
inline constexpr detail::this_stop_token_t this_stop_token{};

}  // namespace durable
