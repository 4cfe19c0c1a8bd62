// durable/detail/trampoline.hpp — bounded stack depth for synchronous await chains.
//
// Symmetric transfer (await_suspend returning the next handle) is only a tail call when the
// compiler makes it one: clang does at every level, g++ 12 only with sibling-call optimisation
// (GCC bugs 94794, 100897), and not reliably under sanitizers. A user's plain -O0 build gets
// no tail calls at all, so a loop of a million synchronously completing awaits would grow the
// stack by a few frames per await and overflow.
//
// So the library bounds the depth itself: every place where the runtime resumes a coroutine is
// a trampoline that records a stack limit. Each transfer checks the stack pointer against it
// (one thread-local load and a compare); past the limit, the handle is parked in a
// thread-local queue and the transfer returns noop_coroutine(), which unwinds the whole chain
// of non-tail calls back to the trampoline, which then resumes the parked handle. Where tail
// calls work the stack never grows, so the check never fires.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace durable::detail {

/// How deep a synchronous chain may grow above the trampoline before it is unwound. Small
/// enough for any thread stack we expect to run on, large enough that unwinding is rare even at
/// -O0 under sanitizers.
inline constexpr std::uintptr_t stack_budget = 64 * 1024;

/// The lowest stack address a transfer may run at on this thread; 0 when no trampoline is
/// active (then nothing is parked: a foreign resumer gets plain symmetric transfer). Both
/// thread_locals are trivially constructible, so reading them costs no initialisation guard.
inline thread_local constinit std::uintptr_t stack_limit = 0;
/// Where a too-deep transfer parks its handle: the active trampoline's queue.
inline thread_local constinit std::vector<std::coroutine_handle<>>* parked_handles = nullptr;

/// Where the stack is now: the stack pointer itself where we know how to read it. The portable
/// `__builtin_frame_address(0)` makes every coroutine that transfers keep a frame pointer, which
/// costs more than the check (create+await with plain `new`: 1.12-1.15x a minimal task, against
/// 1.06-1.08x with the stack pointer; benchmarks/task.cpp).
[[gnu::always_inline]] inline std::uintptr_t current_frame() noexcept {
#if defined(__x86_64__)
  std::uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  return sp;
#elif defined(__aarch64__)
  std::uintptr_t sp;
  asm volatile("mov %0, sp" : "=r"(sp));
  return sp;
#else
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
#endif
}

/// Parks `next` on the active trampoline and unwinds to it. Out of line and cold, so that the
/// coroutines that transfer do not pay for the vector's code in their own (register saves).
[[gnu::noinline, gnu::cold]] inline std::coroutine_handle<> park(std::coroutine_handle<> next) noexcept {
  parked_handles->push_back(next);
  return std::noop_coroutine();
}

/// The handle to return from an await_suspend that transfers control to `next`.
[[gnu::always_inline]] inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> next) noexcept {
#if defined(__x86_64__)
  // The compare reads the limit and the stack pointer in place: reading %rsp into a register
  // first (current_frame) cost one more instruction at each of the two transfers of an await.
  asm goto("cmpq %0, %%rsp\n\tjb %l1" : : "m"(stack_limit) : "cc" : too_deep);
  return next;
too_deep:
  return park(next);
#else
  if (current_frame() < stack_limit) [[unlikely]] return park(next);
  return next;
#endif
}

/// A place on the stack that synchronous chains unwind to. Every thread that resumes durable
/// coroutines on a runtime's behalf does so through one (nested ones save and restore the
/// outer one's state).
class trampoline {
 public:
  trampoline() noexcept : saved_limit_(stack_limit), saved_parked_(parked_handles) {
    const std::uintptr_t here = current_frame();
    stack_limit = here > stack_budget ? here - stack_budget : 0;
    parked_handles = &parked_;
  }
  ~trampoline() {
    stack_limit = saved_limit_;
    parked_handles = saved_parked_;
  }
  trampoline(const trampoline&) = delete;
  trampoline& operator=(const trampoline&) = delete;

  /// Resumes `h`, then whatever its synchronous chain parked here, until nothing is left.
  void resume(std::coroutine_handle<> h) {
    h.resume();
    if (parked_.empty()) [[likely]] return;
    for (std::size_t i = 0; i < parked_.size(); ++i) {
      const std::coroutine_handle<> next = parked_[i];  // resuming may grow the vector
      next.resume();
    }
    parked_.clear();
  }

 private:
  std::uintptr_t saved_limit_;
  std::vector<std::coroutine_handle<>>* saved_parked_;
  std::vector<std::coroutine_handle<>> parked_;
};

}  // namespace durable::detail
