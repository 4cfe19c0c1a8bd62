// durable/detail/context.hpp — what a running task knows about where it runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <string_view>

namespace durable {
class runtime;
}

namespace durable::detail {

class journal_scope;

/// The library's side of one attempt that runs apart from its call (guarded_attempt.hpp): the
/// call may walk away from it (a stop request, an attempt_timeout) and then waits for it to end,
/// unless it is suspended in an awaitable the library does not own. Such an await tells it here.
struct attempt_tracker {
  enum : std::uint8_t { running, delivered, abandoned };

  /// running -> delivered (by the attempt, with its outcome) or running -> abandoned (by the
  /// call, walking away): exactly one side wins.
  std::atomic<std::uint8_t> state{running};
  /// How many of the attempt's coroutines are suspended in foreign awaitables now.
  std::atomic<std::uint32_t> foreign{0};

  /// A coroutine of the attempt suspends in a foreign awaitable. Seq_cst, against the call's
  /// abandon-then-read-`foreign`: one of the two sides sees the other, so a call that walked
  /// away either sees this suspension or is woken by it.
  void entered_foreign() noexcept {
    foreign.fetch_add(1, std::memory_order_seq_cst);
    if (state.load(std::memory_order_seq_cst) == abandoned) wake_walked_away();
  }
  /// It resumed from there.
  void left_foreign() noexcept { foreign.fetch_sub(1, std::memory_order_relaxed); }

 protected:
  attempt_tracker() = default;
  ~attempt_tracker() = default;
  /// Wakes the call, which is waiting for this attempt to end or to suspend outside the library.
  virtual void wake_walked_away() noexcept = 0;
};

/// A stop token as the library's contexts carry it, with the innermost attempt that runs apart
/// from its call (null if none) whose coroutines the token reaches.
struct stop_scope : std::stop_token {
  attempt_tracker* attempt = nullptr;
  /// Whether a stop detaches a running attempt (a call runs each attempt apart, so that it can
  /// walk away from one stuck in a foreign wait), or only ends waits and keeps calls from
  /// starting: cooperative, as the cancel of a journaled invocation is, whose running step is
  /// never abandoned half way. Cooperative scopes let attempts run inline, which is cheaper.
  bool detaches_attempts = true;
};

/// Shared by a call (or a root task) and every plain task it awaits: the runtime that drives
/// them and the call they belong to. A call's is in the call's frame, so it outlives its
/// attempts; a spawned root's is the runtime's own (read only) unless a stop token can stop it.
/// Every call waiting for a retry carries one, so it holds nothing that is not used.
struct call_context {
  runtime* rt = nullptr;
  /// The call's name (empty for a root task).
  std::string_view name;
  /// Where a stop request reaches the work; null when nothing can stop it (the fast path).
  const stop_scope* stop = nullptr;
  /// Where the code is in a journaled invocation; null outside one (the fast path).
  journal_scope* scope = nullptr;

  [[nodiscard]] bool stop_requested() const noexcept { return stop != nullptr && stop->stop_requested(); }
};

}  // namespace durable::detail
