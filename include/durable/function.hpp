// durable/function.hpp — durable functions: the unit that is retried.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/context.hpp"
#include "detail/guarded_attempt.hpp"
#include "detail/journal_scope.hpp"
#include "detail/result.hpp"
#include "detail/stoppable_wait.hpp"
#include "codec.hpp"
#include "error.hpp"
#include "event.hpp"
#include "retry_policy.hpp"
#include "runtime.hpp"
#include "status.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// The retry side of one call: counts nothing itself, but remembers what the backoff formula
/// needs (the delay that grows from retry to retry, the deadline) and decides after each
/// failure.
class retry_schedule {
 public:
  /// After a failed attempt: give up (and why), or wait `delay` before the next one.
  struct decision {
    std::optional<failure_reason> give_up;
    std::chrono::nanoseconds delay{};
  };

  explicit retry_schedule(const retry_policy& policy) noexcept
      : policy_(policy),
        grown_(decorrelated() ? static_cast<exact_delay>(policy.initial_delay.count()) : first_base_delay(policy)) {}

  /// Called when the first attempt starts (the deadline counts from there).
  void start(runtime& rt) {
    if (policy_.max_elapsed > std::chrono::nanoseconds::zero()) deadline_ = add_saturating(rt.now(), policy_.max_elapsed);
  }

  /// When the first attempt started, if the call has a deadline (what a journaled retry wait
  /// records): derived from the deadline, so that a call's frame carries no word more for it.
  [[nodiscard]] std::optional<std::int64_t> first_attempt_ns() const noexcept {
    if (deadline_ == no_deadline) return std::nullopt;
    return (deadline_ - policy_.max_elapsed).time_since_epoch().count();
  }
  /// After a restart: the deadline counts from the first attempt the journal recorded (`ns`
  /// since the epoch; empty: not recorded, it counts from now, as `start` set it).
  void resume_deadline(std::optional<std::int64_t> ns) noexcept {
    if (ns && deadline_ != no_deadline) {
      deadline_ = add_saturating(time_point(std::chrono::nanoseconds(*ns)), policy_.max_elapsed);
    }
  }

  /// After a restart: the schedule as it would be after `attempts` failed attempts (their
  /// base delays; the jitter they drew is not replayed). Constant time, whatever `attempts`.
  void fast_forward(std::uint32_t attempts) noexcept {
    if (decorrelated()) return;  // it grows from the jitter drawn, which is not replayed
    grown_ = base_delay_after(policy_, attempts);
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
      const exact_delay chosen = jittered_delay(policy_, grown_, grown_, unit);
      delay = to_delay(policy_, chosen);
      if (decorrelated()) grown_ = chosen;
    }
    if (!decorrelated()) grown_ = next_base_delay(policy_, grown_);  // retry n's: initial x multiplier^(n-1)
    if (deadline_ != no_deadline) {
      const std::chrono::nanoseconds remaining = deadline_ - rt.now();
      if (remaining <= std::chrono::nanoseconds::zero()) return {failure_reason::deadline_exceeded};
      delay = std::min(delay, remaining);
    }
    return {std::nullopt, delay};
  }

 private:
  [[nodiscard]] bool decorrelated() const noexcept { return policy_.jitter == ::durable::jitter::decorrelated; }

  retry_policy policy_;
  // One word for what grows from retry to retry, exact (not rounded to nanoseconds): the delay
  // chosen last for the decorrelated jitter (which grows from it), else the un-jittered base
  // delay of the next retry.
  exact_delay grown_;
  static constexpr time_point no_deadline = time_point::max();
  time_point deadline_ = no_deadline;
};

/// Where a call is in its retry loop: the attempt it is on, and the wait before the next one,
/// scheduled after a failed attempt (or, after a restart, from the retry wait the journal
/// recorded) and then awaited. A stop request ends the wait at once; `stopped()` then says so.
///
/// A zero delay does not suspend: the retry runs at once, as a hand-written loop would. Only
/// every `inline_retries`-th one in a row goes through the runtime's queue (this thread's own,
/// run next without locking), so that a call failing at once, forever, still lets the other
/// work of its thread run. Either way the stack does not grow.
class retry_state {
 public:
  using durable_library_awaiter = void;
  static constexpr std::uint8_t inline_retries = 16;

  explicit retry_state(const call_context& call) noexcept : call_(&call) {}
  retry_state(const retry_state&) = delete;
  retry_state& operator=(const retry_state&) = delete;

  /// The attempt the call is on (the first is 1).
  [[nodiscard]] std::uint32_t attempt() const noexcept { return attempt_; }
  /// Goes on with attempt `n` (after a restart, the one after the journal's last).
  void start_at(std::uint32_t n) noexcept { attempt_ = n; }
  /// Moves on to the next attempt.
  void advance() noexcept { ++attempt_; }

  /// The next attempt is due after `delay`; `last` is the status of the attempt that failed.
  void schedule(std::chrono::nanoseconds delay, status last) noexcept {
    delay_ = delay;
    last_ = last;
    wait_state_ = wait_state::pending;
  }
  /// True once scheduled, until awaited.
  [[nodiscard]] bool pending() const noexcept { return wait_state_ == wait_state::pending; }
  /// After the wait: true if a stop request ended it (or came by its end).
  [[nodiscard]] bool stopped() const noexcept { return wait_state_ == wait_state::stopped; }
  /// The status of the attempt that failed last.
  [[nodiscard]] status last() const noexcept { return last_; }

  bool await_ready() noexcept {
    if (delay_ != std::chrono::nanoseconds::zero()) return false;
    if (++in_a_row_ < inline_retries) return true;
    in_a_row_ = 0;
    return false;
  }
  // noinline: once published, the handle may be resumed (and the frame freed) elsewhere; clang
  // <= 18 may otherwise still write to the frame afterwards (llvm 56301).
  [[gnu::noinline]] bool await_suspend(std::coroutine_handle<> h) {
    runtime& rt = *call_->rt;
    if (delay_ == std::chrono::nanoseconds::zero()) {
      rt.post(h);
      return true;
    }
    in_a_row_ = 0;
    return wait_.suspend(rt, call_->stop, add_saturating(rt.now(), delay_), h);
  }
  void await_resume() noexcept {
    wait_state_ = wait_.resume() || call_->stop_requested() ? wait_state::stopped : wait_state::over;
  }

 private:
  enum class wait_state : std::uint8_t { over, pending, stopped };

  // In the frame of every call waiting for its retry: four words, the small fields in the
  // wait's tail padding. (The attempt number is here, not a local of the loop, for the same
  // reason: a local would take a word of its own.)
  const call_context* call_;
  std::chrono::nanoseconds delay_{};
  [[no_unique_address]] stoppable_wait wait_;
  status last_ = status::ok;
  wait_state wait_state_ = wait_state::over;
  std::uint8_t in_a_row_ = 0;  // immediate retries run without suspending since the last wait
  std::uint32_t attempt_ = 1;
};
static_assert(sizeof(void*) != 8 || sizeof(retry_state) <= 32,
              "durable: every call waiting for a retry carries a retry_state: keep it to four words");

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
  ~fresh_arguments() { reset(); }

  /// Ends the copy (the attempt it was made for is over).
  void reset() noexcept {
    if constexpr (inline_copy) {
      copy_.reset();
    } else if (copy_ != nullptr) {
      copy_->~tuple();
      deallocate_frame(copy_, sizeof(tuple));
      copy_ = nullptr;
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
/// scope, through which it reads and writes its records, and its value's encoding.
class call_journal {
 public:
  call_journal() noexcept = default;
  call_journal(call_journal&&) noexcept = default;
  call_journal& operator=(call_journal&&) = delete;
  // Drops the call's reference to its current attempt's scope (which holds one to the call's:
  // the cycle ends here).
  ~call_journal() {
    if (call_) call_->end_attempt();
  }

  explicit operator bool() const noexcept { return static_cast<bool>(call_); }

  /// Takes this call's path: the next position in the scope of the code that made the call.
  void enter(journal_scope& parent) { call_ = scope_ref(parent.enter()); }

  /// The scope the next attempt runs in (the previous attempt's may no longer write).
  [[nodiscard]] journal_scope* begin_attempt(std::uint32_t attempt_number) { return call_->begin_attempt(attempt_number); }

  /// True if the journal recorded this call's completion (see journal_scope::completed).
  [[nodiscard]] bool completed(std::string_view name) const { return call_->completed(name); }

  /// The recorded outcome of this call: its value, or its failure thrown again.
  template <class T>
  T replay(std::string_view name) const {
    const std::vector<std::byte> value = call_->recorded_value(name);
    // Pointer and size, not the vector converted: span's constructor from a range costs g++ its
    // ranges concept checks in every program that includes this header (issue 15).
    const std::span<const std::byte> bytes(value.data(), value.size());
    if constexpr (std::is_void_v<T>) {
      static_cast<void>(decode<std::monostate>(bytes));
    } else if constexpr (encodable<T>) {
      return decode<T>(bytes);
    } else {
      throw unjournaled_type();
    }
  }

  /// This call's recorded retry wait (failed_attempt 0 if none).
  [[nodiscard]] recorded_retry_wait retry_wait() const { return call_->retry_wait(); }

  /// Journals a retry wait, with when the first attempt started if the call has a deadline.
  void waiting(std::uint32_t attempt, status last, time_point wake_at, std::optional<std::int64_t> first_attempt_ns) {
    call_->waiting(attempt, last, wake_at, first_attempt_ns);
  }

  /// Journals the call's value, durably, before its caller resumes.
  template <class T, class Value>
  void succeeded(std::string_view name, std::uint32_t attempts, const Value& value) {
    // First: an abandoned attempt's value is neither journaled nor encoded (its type may have
    // no codec, or a codec that throws; its code goes on as if nothing were journaled).
    if (call_->abandoned()) return;
    // Encoded into a buffer this thread reuses: no allocation.
    thread_local byte_writer value_bytes;
    value_bytes.clear();
    if constexpr (std::is_void_v<T>) {
      codec<std::monostate>::encode(std::monostate{}, value_bytes);
    } else if constexpr (encodable<T>) {
      if constexpr (std::is_reference_v<T>) {
        codec<std::remove_cvref_t<T>>::encode(*value, value_bytes);
      } else {
        codec<T>::encode(value, value_bytes);
      }
    } else {
      throw unjournaled_type();
    }
    call_->succeeded(name, attempts, std::span<const std::byte>(value_bytes.bytes().data(), value_bytes.bytes().size()));
  }

  /// Journals the call's failure, durably, before its caller sees it (see journal_scope::failed).
  void failed(const failure& f) { call_->failed(f); }

 private:
  static failure unjournaled_type() {
    return failure(status::invalid_argument, failure_reason::fatal_status, 1, {}, nullptr,
                   "a call in a journaled invocation returns a type without a durable::codec: "
                   "specialise durable::codec for it so that its result can be journaled");
  }

  // One pointer, null outside a journaled invocation: a call waiting for a retry should carry
  // as little as possible.
  scope_ref call_;
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

/// Ends a call that a stop request reached between attempts: never retried.
template <class Spec>
[[noreturn]] void throw_call_cancelled(const Spec& spec, std::uint32_t attempts, status last) {
  const std::string_view why = attempts == 0 ? "cancelled before its first attempt" : "cancelled while waiting to retry";
  spec.context.rt->emit_failure(event_kind::failed, spec.context.name, attempts, last, failure_reason::cancelled,
                                nullptr, why);
  throw cancelled_failure(last, attempts, spec.context.name, why);
}

/// An attempt run in the background (see guarded_attempt.hpp), as the task the call awaits: it
/// ends with the attempt's outcome, or with a `timeout` fault (the attempt ran past its
/// `attempt_timeout`), or a `cancelled` one (the call was stopped while it ran).
template <class Task, class Spec>
Task guarded_attempt(const Spec& spec, call_context& call) {
  using T = typename Task::value_type;
  {
    promise_base& self = co_await promise_probe{};
    self.skip_output_inspection();  // the attempt inspected its value already
  }
  attempt_watch<T> watch(call, spec.schedule.attempt_timeout());
  watch.template prepare<Task>(spec.callable, spec.args);
  co_await watch;
  co_await watch.settled();
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

/// Gives the call its context from the task that awaits it (its runtime, stop token and
/// journal scope) and checks that it can run.
template <class Spec>
void enter_call(Spec& spec, promise_base& self) {
  self.skip_output_inspection();  // the attempt inspected the value already
  const call_context* caller = self.context();
  call_context& context = spec.context;
  if (caller != nullptr) {
    context.rt = caller->rt;
    context.stop = caller->stop;
    if (caller->scope != nullptr) spec.journal.enter(*caller->scope);
  }
  if (context.rt == nullptr) {
    throw std::logic_error("durable: a durable call must run on a durable::runtime (rt.run or rt.spawn)");
  }
  spec.schedule.start(*context.rt);
  if (context.stop_requested()) throw_call_cancelled(spec, 0, status::permanent_error);
}

/// After a restart: the attempt the call goes on with, and when it is due, from the retry wait
/// the journal recorded for it. Without one: the first attempt, now.
template <class Spec>
void resume_from_journal(Spec& spec, retry_state& retry) {
  const recorded_retry_wait wait = spec.journal.retry_wait();
  const std::uint32_t waited = wait.failed_attempt;
  if (waited == 0) return;
  spec.schedule.fast_forward(waited);
  spec.schedule.resume_deadline(wait.first_attempt_ns);
  // Clamped: the number comes from a file. From half the range, the count cannot wrap before
  // two billion more attempts.
  retry.start_at(std::min(waited, std::numeric_limits<std::uint32_t>::max() / 2) + 1);
  // Not before now: a retry that was due before the restart is due at once.
  retry.schedule(std::max(sub_saturating(wait.wake_at, spec.context.rt->now()), std::chrono::nanoseconds::zero()),
                 wait.last);
}

/// An attempt that could not start (copying the arguments or calling the callable threw, or the
/// callable returned an empty task), as a task that ends with that fault at once, so that the
/// loop treats it like any failed attempt. Only this rare path allocates a frame for it.
template <class Task>
Task failed_attempt(fault_ptr cause) {
  co_yield forwarded_fault{cause.release()};
  std::terminate();  // never reached: a task is not resumed after co_yield of a fault
}

/// Starts one attempt: a fresh copy of the arguments in `fresh` and the callable's task (an
/// inline one, or a guarded one the call can walk away from), ready to be resumed in `context`.
template <class Task, class Spec, class... Args>
Task start_attempt(Spec& spec, std::uint32_t attempt, fresh_arguments<Args...>& fresh) {
  call_context& context = spec.context;
  if (spec.journal) context.scope = spec.journal.begin_attempt(attempt);
  context.rt->emit(event_kind::attempt_started, context.name, attempt, status::ok);
  Task started;
  fault_ptr not_started;
  try {
    if (spec.schedule.attempt_timeout() != std::chrono::nanoseconds::zero() ||
        (context.stop != nullptr && context.stop->detaches_attempts && context.stop->stop_possible())) {
      started = guarded_attempt<Task>(spec, context);
    } else {
      started = std::apply([&spec](Args&... a) { return std::invoke(std::as_const(spec.callable), std::move(a)...); },
                           fresh.fill(spec.args));
    }
  } catch (...) {
    not_started = make_fault_with([] { return fault_from_current_exception<typename Task::policy_type>(); });
  }
  if (!not_started && !started.valid()) not_started = empty_task_fault();
  if (not_started) started = failed_attempt<Task>(std::move(not_started));
  started.handle().promise().set_context(&context);
  return started;
}

/// After an attempt ended: true if it succeeded (journaled and reported; its value is still in
/// its promise).
template <class Task, class Spec>
bool attempt_succeeded(Spec& spec, std::uint32_t attempt, const Task& ended) {
  auto& out = ended.handle().promise().outcome;
  if (out.has_fault()) return false;
  if (spec.journal) spec.journal.template succeeded<typename Task::value_type>(spec.context.name, attempt, out.storage());
  spec.context.rt->emit(event_kind::succeeded, spec.context.name, attempt, status::ok);
  return true;
}

/// The `attempt_failed` event, for the callbacks (out of line and cold, as `report_decision`:
/// without callbacks a failed attempt pays one test for them). `kept` is the attempt's fault,
/// `give_up` the schedule's verdict.
[[gnu::noinline, gnu::cold]] inline void report_attempt_failed(const call_context& context, std::uint32_t attempt,
                                                               status code, const fault& kept,
                                                               std::optional<failure_reason> give_up) noexcept {
  // Why the attempt ended as it did (see event::reason).
  std::optional<failure_reason> why = give_up;
  if ((kept.final && kept.reason == failure_reason::cancelled) || (!give_up && context.stop_requested())) {
    why = failure_reason::cancelled;
  } else if (!kept.final && kept.reason == failure_reason::attempt_timeout) {
    why = failure_reason::attempt_timeout;
  }
  context.rt->emit_failure(event_kind::attempt_failed, context.name, attempt, code, why, &kept);
}

/// What the call does after the failed attempt, for the callbacks: `failed` (it gives up, and
/// why) or `retry_scheduled` (after `delay`).
[[gnu::noinline, gnu::cold]] inline void report_decision(const call_context& context, std::uint32_t attempt,
                                                         status code, fault_ptr kept,
                                                         std::optional<failure_reason> gave_up,
                                                         std::chrono::nanoseconds delay) noexcept {
  if (gave_up) {
    context.rt->emit_failure(event_kind::failed, context.name, attempt, code, gave_up, kept.get());
  } else {
    context.rt->emit_failure(event_kind::retry_scheduled, context.name, attempt, code, std::nullopt, kept.get(), {},
                             delay);
  }
}

/// After a failed attempt: either throws the call's durable::failure, or schedules the retry. The
/// fault is read where it is, in the attempt's promise (so a borrowed `fail` message is copied
/// only into a failure, or for event callbacks); then the attempt's frame and arguments are
/// freed, before any event or journal record reports the failure. A stop requested until then
/// (even by an event callback) ends the call instead of the retry.
template <class Spec, class Task, class... Args>
void plan_retry(Spec& spec, Task& ended, fresh_arguments<Args...>& fresh, retry_state& retry) {
  const call_context& context = spec.context;
  const std::uint32_t attempt = retry.attempt();
  runtime& rt = *context.rt;
  auto& outcome = ended.handle().promise().outcome;
  const fault& failed = outcome.get_fault();
  // A cancelled attempt did not fail: the call reports the status of the one that failed last.
  const bool cancelled = failed.final && failed.reason == failure_reason::cancelled;
  const status code = !cancelled ? failed.code : attempt > 1 ? retry.last() : status::permanent_error;
  const retry_schedule::decision decided = spec.schedule.after_failure(failed, attempt, rt);
  std::optional<failure> gave_up;
  if (decided.give_up) {
    gave_up.emplace(code, *decided.give_up, attempt, context.name, failed.exception, failed.text());
  } else if (context.stop != nullptr) {  // in case a stop comes before the retry is scheduled
    gave_up.emplace(code, failure_reason::cancelled, attempt, context.name, failed.exception, failed.text());
  }
  // The fault outlives the attempt only for event callbacks (taking it out copies a borrowed
  // `fail` text).
  // (A raw pointer until then: a fault_ptr local would cost its destructor on every attempt.)
  fault* kept = nullptr;
  if (rt.has_event_callbacks()) [[unlikely]] kept = outcome.release_fault().release();
  ended = Task();
  fresh.reset();
  if (kept != nullptr) [[unlikely]] report_attempt_failed(context, attempt, code, *kept, decided.give_up);
  // Decided once, after the attempt_failed callbacks (which may request the stop themselves).
  const bool giving_up = decided.give_up || context.stop_requested();
  if (kept != nullptr) [[unlikely]] {
    report_decision(context, attempt, code, fault_ptr(kept), giving_up ? std::optional(gave_up->reason()) : std::nullopt,
                    decided.delay);
  }
  if (giving_up) {
    if (spec.journal) spec.journal.failed(*gave_up);
    throw std::move(*gave_up);
  }
  if (spec.journal) {
    spec.journal.waiting(attempt, code, add_saturating(rt.now(), decided.delay), spec.schedule.first_attempt_ns());
  }
  retry.schedule(decided.delay, code);
}

/// The retry loop of one call. Each attempt gets a fresh copy of the arguments (kept alive in
/// this frame until the attempt ends, so reference parameters never dangle); between attempts
/// the attempt's frame is gone and this frame waits in its `retry_state`.
template <class Task, class F, class... Args>
Task run_call(call_spec<F, Args...> spec) {
  using T = typename Task::value_type;
  // This frame is what a call waiting for its retry costs (benchmarks/memory.cpp). The work is
  // done in ordinary functions, so that their locals and temporaries stay off it, and the
  // awaiters are few: g++ gives every co_await expression a slot of its own.
  enter_call(spec, co_await promise_probe{});
  retry_state retry(spec.context);
  if (spec.journal) {
    // A call the journal saw complete returns what it returned, without running again; one it
    // saw waiting for a retry goes on from there, at the recorded time.
    if (spec.journal.completed(spec.context.name)) co_return spec.journal.template replay<T>(spec.context.name);
    resume_from_journal(spec, retry);
  }
  for (;; retry.advance()) {
    if (retry.pending()) {
      co_await retry;  // a statement: a value or a condition here would take frame slots
      if (retry.stopped()) throw_call_cancelled(spec, retry.attempt() - 1, retry.last());
    }
    {
      fresh_arguments<Args...> fresh;
      Task attempt_task = start_attempt<Task>(spec, retry.attempt(), fresh);
      co_await resume_task(attempt_task);
      if (attempt_succeeded(spec, retry.attempt(), attempt_task)) {
        co_return attempt_task.handle().promise().outcome.take_value();
      }
      // incompatible_state restarts from scratch: with no journal that is an ordinary retry.
      plan_retry(spec, attempt_task, fresh, retry);
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
          call_context{nullptr, name}, retry_schedule(policy), callable,
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
