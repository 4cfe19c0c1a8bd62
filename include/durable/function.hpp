// durable/function.hpp — durable functions: the unit that is retried.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "detail/context.hpp"
#include "detail/guarded_attempt.hpp"
#include "detail/invocation.hpp"
#include "detail/result.hpp"
#include "detail/stoppable_wait.hpp"
#include "codec.hpp"
#include "error.hpp"
#include "event.hpp"
#include "journal_records.hpp"
#include "retry_policy.hpp"
#include "runtime.hpp"
#include "status.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// The retry side of one call: counts nothing itself, but remembers what the backoff formula
/// needs (the base delay, the previous delay, the deadline) and decides after each failure.
class retry_schedule {
 public:
  /// After a failed attempt: give up (and why), or wait `delay` before the next one.
  struct decision {
    std::optional<failure_reason> give_up;
    std::chrono::nanoseconds delay{};
  };

  explicit retry_schedule(const retry_policy& policy) noexcept
      : policy_(policy), base_(first_base_delay(policy)), previous_(policy.initial_delay) {}

  /// Called when the first attempt starts (the deadline counts from there).
  void start(runtime& rt) {
    if (policy_.max_elapsed > std::chrono::nanoseconds::zero()) deadline_ = add_saturating(rt.now(), policy_.max_elapsed);
  }

  /// After a restart: the schedule as it would be after `attempts` failed attempts (their
  /// base delays; the jitter they drew is not replayed).
  void fast_forward(std::uint32_t attempts) noexcept {
    for (std::uint32_t i = 0; i < attempts; ++i) base_ = next_base_delay(policy_, base_);
  }

  /// The policy's attempt_timeout (zero: none).
  [[nodiscard]] std::chrono::nanoseconds attempt_timeout() const noexcept { return policy_.attempt_timeout; }

  decision after_failure(const fault& failed, std::uint32_t attempt, runtime& rt) {
    if (failed.final) return {failed.reason};  // a child call gave up: never multiply retries
    if (!is_retryable(failed.code)) return {failure_reason::fatal_status};
    if (policy_.max_attempts != 0 && attempt >= policy_.max_attempts) {
      return {failure_reason::attempts_exhausted};  // the delay after the last attempt is not slept
    }
    std::chrono::nanoseconds delay;
    if (failed.retry_after) {
      delay = std::clamp(*failed.retry_after, std::chrono::nanoseconds::zero(), policy_.max_delay);
    } else {
      const double unit = policy_.jitter == ::durable::jitter::none ? 0.0 : rt.random_unit();
      delay = jittered_delay(policy_, base_, previous_, unit);
      previous_ = delay;
    }
    base_ = next_base_delay(policy_, base_);  // retry n's base is initial x multiplier^(n-1)
    if (deadline_ != no_deadline) {
      const std::chrono::nanoseconds remaining = deadline_ - rt.now();
      if (remaining <= std::chrono::nanoseconds::zero()) return {failure_reason::deadline_exceeded};
      delay = std::min(delay, remaining);
    }
    return {std::nullopt, delay};
  }

 private:
  retry_policy policy_;
  std::chrono::nanoseconds base_;
  std::chrono::nanoseconds previous_;
  static constexpr time_point no_deadline = time_point::max();
  time_point deadline_ = no_deadline;
};

/// Resumes the call after `delay` on the runtime. A zero delay still goes through a queue (this
/// thread's own, run next without locking; after a bounded number of such items the thread
/// turns to the shared queue), so a run of immediate retries never nests on the stack. A stop
/// request ends the wait at once; `co_await` yields `status::ok`, or, when the call was
/// stopped during (or by the end of) the wait, the status of the attempt that failed last.
struct retry_awaiter {
  runtime* rt;
  std::chrono::nanoseconds delay;
  const call_context* call;
  status last;
  stoppable_wait wait{};

  bool await_ready() const noexcept { return false; }
  // noinline: once published, the handle may be resumed (and the frame freed) elsewhere; clang
  // <= 18 may otherwise still write to the frame afterwards (llvm 56301).
  [[gnu::noinline]] bool await_suspend(std::coroutine_handle<> h) {
    if (delay == std::chrono::nanoseconds::zero()) {
      rt->post(h);
      return true;
    }
    return wait.suspend(*rt, call->stop, add_saturating(rt->now(), delay), h);
  }
  [[nodiscard]] status await_resume() noexcept {
    return wait.resume() || call->stop_requested() ? last : status::ok;
  }
};

/// One attempt's own copy of the arguments, alive until the attempt ends (a `const&` or `&&`
/// parameter refers into it). Anything bigger than a pointer lives in pooled memory rather
/// than in the call's frame, so a call waiting for its retry does not carry it.
template <class... Args>
class fresh_arguments {
  using tuple = std::tuple<Args...>;
  static constexpr bool inline_copy = sizeof(tuple) <= sizeof(void*);

 public:
  fresh_arguments() noexcept = default;
  fresh_arguments(const fresh_arguments&) = delete;
  fresh_arguments& operator=(const fresh_arguments&) = delete;
  ~fresh_arguments() {
    if constexpr (inline_copy) {
      return;
    } else if (copy_ != nullptr) {
      copy_->~tuple();
      deallocate_frame(copy_, sizeof(tuple));
    }
  }

  /// Makes the copy (may throw what copying an argument throws) and returns it.
  tuple& fill(const tuple& original) {
    if constexpr (inline_copy) {
      return copy_.emplace(original);
    } else {
      void* memory = allocate_frame(sizeof(tuple));
      try {
        copy_ = ::new (memory) tuple(original);
      } catch (...) {
        deallocate_frame(memory, sizeof(tuple));
        throw;
      }
      return *copy_;
    }
  }

 private:
  std::conditional_t<inline_copy, std::optional<tuple>, tuple*> copy_{};
};

/// What a call's value is journaled as: itself, or std::monostate for void.
template <class T>
using journal_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// A call's side of the journal when it runs in a journaled invocation (empty otherwise): its
/// path, the scope of its current attempt, and the records it reads and writes.
class call_journal {
 public:
  explicit operator bool() const noexcept { return static_cast<bool>(call_); }

  /// Takes this call's path: the next position in the scope of the code that made the call.
  void enter(journal_scope& parent) {
    call_ = scope_ref(new journal_scope(parent.invocation(), parent.next_child(), &parent));
  }

  /// The scope the next attempt runs in (the previous attempt's may no longer write).
  [[nodiscard]] journal_scope* begin_attempt() {
    if (attempt_) attempt_->abandon();
    attempt_ = scope_ref(new journal_scope(call_->invocation(), call_->path(), call_.get()));
    return attempt_.get();
  }

  /// True if the journal recorded this call's completion. A sleep or a call of another function
  /// recorded at this path means the code changed: a journal mismatch is thrown.
  [[nodiscard]] bool completed(std::string_view name) const {
    const invocation_journal& inv = call_->invocation();
    if (const auto done = inv.completed(call_->path())) {
      if (done->function != name) {
        throw journal_mismatch(call_->path(), "a call of '" + done->function + "'",
                               "a call of '" + std::string(name) + "'");
      }
      return true;
    }
    if (const auto wait = inv.wait(call_->path()); wait && wait->kind != wait_kind::retry) {
      throw journal_mismatch(call_->path(), "a sleep", "a call of '" + std::string(name) + "'");
    }
    return false;
  }

  /// The recorded outcome of this call: its value, or its failure thrown again.
  template <class T>
  T replay(std::string_view name) const {
    const call_completed_record done = *call_->invocation().completed(call_->path());
    if (done.code != status::ok) throw recorded_failure(done, name);
    if constexpr (std::is_void_v<T>) {
      static_cast<void>(decode<std::monostate>(done.value));
    } else if constexpr (encodable<T>) {
      return decode<T>(done.value);
    } else {
      throw unjournaled_type();
    }
  }

  /// The attempt that failed before this call's recorded retry wait (0: none recorded).
  [[nodiscard]] std::uint32_t recorded_retry() const {
    const auto wait = call_->invocation().wait(call_->path());
    return wait && wait->kind == wait_kind::retry ? wait->attempt : 0;
  }
  /// How long until the recorded retry is due (zero if it is past).
  [[nodiscard]] std::chrono::nanoseconds until_recorded_retry(runtime& rt) const {
    const auto wait = call_->invocation().wait(call_->path());
    return std::max(wait->wake_at() - rt.now(), std::chrono::nanoseconds::zero());
  }

  /// Journals a retry wait (not flushed: lost in a crash, the call just starts over sooner).
  void waiting(std::uint32_t attempt, status last, time_point wake_at) {
    if (call_->abandoned()) return;
    call_->invocation().append(journal_record_type::wait_scheduled,
                               wait_scheduled_record{call_->invocation().id(), call_->path(), wait_kind::retry,
                                                     attempt, last, wake_at.time_since_epoch().count()},
                               false);
  }

  /// Journals the call's value, durably, before its caller resumes.
  template <class T, class Value>
  void succeeded(std::string_view name, std::uint32_t attempts, const Value& value) {
    if (call_->abandoned()) return;
    call_completed_record done{call_->invocation().id(), call_->path(), std::string(name)};
    done.attempts = attempts;
    if constexpr (std::is_void_v<T>) {
      done.value = encode(std::monostate{});
    } else if constexpr (encodable<T>) {
      if constexpr (std::is_reference_v<T>) {
        done.value = encode(*value);
      } else {
        done.value = encode(value);
      }
    } else {
      throw unjournaled_type();
    }
    call_->invocation().complete(std::move(done));
  }

  /// Journals the call's failure, durably, before its caller sees it. A cancellation is not
  /// journaled (after a restart the call runs again), nor a journal mismatch (the invocation
  /// starts over anyway).
  void failed(const failure& f) {
    if (call_->abandoned() || f.reason() == failure_reason::cancelled || f.code() == status::incompatible_state) return;
    call_completed_record done{call_->invocation().id(), call_->path(), std::string(f.function_name())};
    done.code = f.code();
    done.reason = f.reason();
    done.attempts = f.attempts();
    done.message = f.what();
    call_->invocation().complete(std::move(done));
  }

 private:
  static failure unjournaled_type() {
    return failure(status::invalid_argument, failure_reason::fatal_status, 1, {}, nullptr,
                   "a call in a journaled invocation returns a type without a durable::codec: "
                   "specialise durable::codec for it so that its result can be journaled");
  }

  scope_ref call_;
  scope_ref attempt_;
};

/// Everything a call owns: its name, its retry state, its own copy of the callable and of the
/// arguments. One parameter, so that the call's frame holds each of them once.
template <class F, class... Args>
struct call_spec {
  /// The call's name, and (once it runs) its runtime and enclosing call.
  call_context context;
  retry_schedule schedule;
  [[no_unique_address]] F callable;
  std::tuple<Args...> args;
  /// Empty unless the call runs in a journaled invocation.
  call_journal journal{};
};

/// After a failed attempt: either throws the call's durable::failure, or frees the fault and
/// returns the awaitable that resumes the call when its next attempt is due.
template <class Spec>
retry_awaiter plan_retry(Spec& spec, call_context& context, std::uint32_t attempt, fault_ptr& failed) {
  runtime& rt = *context.rt;
  rt.emit(event_kind::attempt_failed, spec.context.name, attempt, failed->code);
  retry_schedule::decision next = spec.schedule.after_failure(*failed, attempt, rt);
  if (!next.give_up && context.stop_requested()) next.give_up = failure_reason::cancelled;
  if (next.give_up) {
    rt.emit(event_kind::failed, spec.context.name, attempt, failed->code);
    failure gave_up(failed->code, *next.give_up, attempt, spec.context.name, failed->exception, failed->message);
    if (spec.journal) spec.journal.failed(gave_up);
    throw gave_up;
  }
  rt.emit(event_kind::retry_scheduled, spec.context.name, attempt, failed->code, next.delay);
  if (spec.journal) spec.journal.waiting(attempt, failed->code, add_saturating(rt.now(), next.delay));
  const status last = failed->code;
  failed.reset();  // the fault is not kept while the call waits
  return retry_awaiter{&rt, next.delay, &context, last};
}

/// After a restart: waits until the retry the journal recorded for this call is due. (A function,
/// not a braced awaiter in the co_await: see CPP_NOTES, GCC 100611.)
template <class Spec>
retry_awaiter resume_recorded_retry(Spec& spec, call_context& context) {
  return retry_awaiter{context.rt, spec.journal.until_recorded_retry(*context.rt), &context, status::permanent_error};
}

/// Ends a call that a stop request reached between attempts: never retried.
template <class Spec>
[[noreturn]] void throw_call_cancelled(const Spec& spec, const call_context& context, std::uint32_t attempts,
                                       status last) {
  context.rt->emit(event_kind::failed, spec.context.name, attempts, last);
  throw cancelled_failure(last, attempts, spec.context.name,
                          attempts == 0 ? "cancelled before its first attempt" : "cancelled while waiting to retry");
}

/// An attempt run in the background (see guarded_attempt.hpp), as the task the call awaits: it
/// ends with the attempt's outcome, or with a `timeout` fault (the attempt ran past its
/// `attempt_timeout`), or a `cancelled` one (the call was stopped while it ran).
template <class Task, class Spec>
Task guarded_attempt(const Spec& spec, call_context& call) {
  using T = typename Task::value_type;
  {
    promise_base& self = co_await promise_probe{};
    self.inspect_output = false;  // the attempt inspected its value already
  }
  attempt_watch<T> watch(call, spec.schedule.attempt_timeout());
  watch.template prepare<Task>(spec.callable, spec.args);
  co_await watch;
  fault* failed = nullptr;  // owned; see forwarded_fault
  if (result<T>* out = watch.outcome()) {
    if (!out->has_fault()) {
      if constexpr (std::is_void_v<T>) {
        co_return;
      } else {
        co_return out->take_value();
      }
    }
    failed = out->release_fault().release();
  } else {
    failed = watch.walked_away().release();
  }
  co_yield forwarded_fault{failed};
  std::terminate();  // never reached: a task is not resumed after co_yield of a fault
}

/// The retry loop of one call. Each attempt gets a fresh copy of the arguments (kept alive in
/// this frame until the attempt ends, so reference parameters never dangle); between attempts
/// the attempt's frame is gone and this frame waits on a runtime timer.
template <class Task, class F, class... Args>
Task run_call(call_spec<F, Args...> spec) {
  using T = typename Task::value_type;
  using Policy = typename Task::policy_type;
  // Locals here live in the frame of every call waiting for a retry: keep them few and small.
  call_context& context = spec.context;
  {
    promise_base& self = co_await promise_probe{};
    self.inspect_output = false;  // the attempt inspected the value already
    context.parent = self.ctx;
    context.rt = self.ctx != nullptr ? self.ctx->rt : nullptr;
    context.stop = self.ctx != nullptr ? self.ctx->stop : nullptr;
    if (self.ctx != nullptr && self.ctx->scope != nullptr) spec.journal.enter(*self.ctx->scope);
  }
  if (context.rt == nullptr) {
    throw std::logic_error("durable: a durable call must run on a durable::runtime (rt.run or rt.spawn)");
  }
  spec.schedule.start(*context.rt);

  if (context.stop_requested()) throw_call_cancelled(spec, context, 0, status::permanent_error);

  std::uint32_t attempt = 1;
  if (spec.journal) {
    // A call the journal saw complete returns what it returned, without running again; one it
    // saw waiting for a retry goes on from there, at the recorded time.
    if (spec.journal.completed(spec.context.name)) co_return spec.journal.template replay<T>(spec.context.name);
    if (const std::uint32_t waited = spec.journal.recorded_retry(); waited != 0) {
      attempt = waited + 1;
      spec.schedule.fast_forward(waited);
      if (const status stopped = co_await resume_recorded_retry(spec, context); stopped != status::ok) {
        throw_call_cancelled(spec, context, waited, stopped);
      }
    }
  }

  for (;; ++attempt) {
    if (spec.journal) context.scope = spec.journal.begin_attempt();
    context.rt->emit(event_kind::attempt_started, spec.context.name, attempt, status::ok);
    fault_ptr failed;
    {
      fresh_arguments<Args...> fresh;
      Task attempt_task;
      try {
        if (spec.schedule.attempt_timeout() != std::chrono::nanoseconds::zero() ||
            (context.stop != nullptr && context.stop->stop_possible())) {
          attempt_task = guarded_attempt<Task>(spec, context);  // the call can walk away from it
        } else {
          attempt_task = std::apply(
              [&spec](Args&... a) { return std::invoke(std::as_const(spec.callable), std::move(a)...); },
              fresh.fill(spec.args));
        }
      } catch (...) {  // copying the arguments or calling the callable threw
        failed = make_fault_with([] { return fault_from_current_exception<Policy>(); });
      }
      if (!attempt_task.valid() && !failed) failed = empty_task_fault();
      if (attempt_task.valid()) {
        result<T>& out = co_await outcome_awaiter<T, Policy>{attempt_task.handle(), &context};
        if (!out.has_fault()) {
          if (spec.journal) spec.journal.template succeeded<T>(spec.context.name, attempt, out.storage());
          context.rt->emit(event_kind::succeeded, spec.context.name, attempt, status::ok);
          co_return out.take_value();
        }
        failed = out.release_fault();
      }
    }

    // incompatible_state restarts from scratch: with no journal that is an ordinary retry.
    if (const status stopped = co_await plan_retry(spec, context, attempt, failed); stopped != status::ok) {
      throw_call_cancelled(spec, context, attempt, stopped);
    }
  }
}

template <class F, class... A>
auto make_call(std::string_view name, const retry_policy& policy, const F& callable, A&&... args) {
  static_assert((std::is_copy_constructible_v<std::decay_t<A>> && ...),
                "durable: the arguments of a durable call must be copyable: every attempt gets "
                "its own fresh copy");
  static_assert(std::is_invocable_v<const F&, std::decay_t<A>&&...>,
                "durable: the function cannot be called with fresh rvalue copies of these "
                "arguments (pass a non-const lvalue reference parameter with std::ref)");
  // Only go on when both hold, so that the static_assert above is the only error reported.
  if constexpr ((std::is_copy_constructible_v<std::decay_t<A>> && ...) &&
                std::is_invocable_v<const F&, std::decay_t<A>&&...>) {
    using Task = std::invoke_result_t<const F&, std::decay_t<A>&&...>;
    static_assert(is_durable_task<Task>,
                  "durable: the callable of a durable function must return a durable::durable_task");
    static_assert(alignof(std::tuple<std::decay_t<A>...>) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                  "durable: over-aligned argument types are not supported by durable calls; pass "
                  "them inside a std::unique_ptr or a std::vector");
    if constexpr (is_durable_task<Task>) {
      static_assert(!std::is_reference_v<typename Task::value_type>,
                    "durable: a durable call cannot return a reference: its arguments are copies "
                    "that end with each attempt (return a value)");
      return run_call<Task>(call_spec<F, std::decay_t<A>...>{
          call_context{nullptr, nullptr, name, nullptr}, retry_schedule(policy), callable,
          std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)});
    }
  }
}

}  // namespace detail

/// A named durable function: calling it returns a `durable_task` that runs the callable, and
/// runs it again (with a fresh copy of the arguments) after each retryable failure, following
/// the retry policy, until it succeeds or the failure is fatal. Constexpr-constructible, so
/// `inline constexpr durable::function f{"name", [](...) -> task<...> {...}};` at namespace
/// scope has no initialisation-order hazard and an invalid policy is a compile error.
template <class F>
class function {
 public:
  /// `name` must refer to static storage (a string literal); the policy is validated here and
  /// a bad field throws std::invalid_argument naming it.
  constexpr function(std::string_view name, F callable, retry_policy policy = {})
      : name_(name), callable_(std::move(callable)), policy_(policy) {
    policy_.validate();
  }

  /// A call of this function with decayed copies of `args`. The task keeps its own copy of the
  /// callable and the name: it never refers back to this object.
  template <class... A>
  auto operator()(A&&... args) const {
    return detail::make_call(name_, policy_, callable_, std::forward<A>(args)...);
  }

  /// The function's stable name (used in events, failures and journals).
  [[nodiscard]] constexpr std::string_view name() const noexcept { return name_; }
  /// The function's retry policy.
  [[nodiscard]] constexpr const retry_policy& policy() const noexcept { return policy_; }
  /// The callable it wraps.
  [[nodiscard]] constexpr const F& callable() const noexcept { return callable_; }

 private:
  std::string_view name_;
  F callable_;
  retry_policy policy_;
};

/// An unnamed durable call with the default retry policy.
template <class F, class... A>
  requires(!std::is_same_v<std::remove_cvref_t<F>, retry_policy>)
auto call(F&& callable, A&&... args) {
  const std::decay_t<F> own(std::forward<F>(callable));  // a function becomes a pointer
  return detail::make_call({}, retry_policy{}, own, std::forward<A>(args)...);
}

/// An unnamed durable call with its own retry policy (validated here: std::invalid_argument).
template <class F, class... A>
auto call(const retry_policy& policy, F&& callable, A&&... args) {
  policy.validate();
  const std::decay_t<F> own(std::forward<F>(callable));  // a function becomes a pointer
  return detail::make_call({}, policy, own, std::forward<A>(args)...);
}

}  // namespace durable
