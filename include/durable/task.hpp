// durable/task.hpp — durable_task<T, Policy>: the lazy coroutine type of durable.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/classify.hpp"
#include "detail/context.hpp"
#include "detail/frame_pool.hpp"
#include "detail/result.hpp"
#include "detail/trampoline.hpp"
#include "error.hpp"
#include "fail.hpp"
#include "policy.hpp"
#include "status.hpp"

namespace durable {

template <class T = void, class Policy = default_policy>
class durable_task;

namespace detail {

template <class>
constexpr bool always_false = false;

/// What a task re-raised in its awaiting caller: the exception and the verdict it was given
/// where it was first caught. Kept by the caller's promise, so that if the exception leaves the
/// caller's body (at once, or after the caller caught it and rethrew it later) it is not
/// classified again under the caller's policy.
struct raised_record {
  raised_record* next;
  std::exception_ptr exception;
  classification verdict;
  /// The exception is a durable::error made from a `fail` or an output inspection: the caller's
  /// fault keeps no exception for it (failure::cause() stays null) but keeps the message.
  bool synthetic;
  std::string message;
};

/// The part of every durable promise that does not depend on T or the policy.
struct promise_base {
  promise_base() noexcept = default;
  promise_base(const promise_base&) = delete;
  promise_base& operator=(const promise_base&) = delete;
  // Out of line and behind one test, like the fault's (see ~task_promise_common).
  ~promise_base() {
    if (raised_ != 0) [[unlikely]] release_raised();
  }

  /// Remembers an exception re-raised in this task's body (best effort: without memory it is
  /// simply classified again if it escapes).
  void remember_raised(const fault& f, const std::exception_ptr& e, bool synthetic) noexcept {
    try {
      void* memory = allocate_frame(sizeof(raised_record));
      auto* r = ::new (memory) raised_record{raised_list(), e, {f.code, f.final, f.reason, f.retry_after},
                                             synthetic, synthetic ? std::string(f.text()) : std::string()};
      raised_ = reinterpret_cast<std::uintptr_t>(r) | (raised_ & output_inspected_bit);
    } catch (...) {
    }
  }

  /// The record of `e` if this task re-raised it, else null.
  [[nodiscard]] raised_record* find_raised(const std::exception_ptr& e) const noexcept {
    for (raised_record* r = raised_list(); r != nullptr; r = r->next)
      if (r->exception == e) return r;
    return nullptr;
  }

  /// At the end of the task: frees the records of re-raised exceptions and clears the word
  /// that holds them (the output-inspection flag with them).
  [[gnu::noinline, gnu::cold]] void release_raised() noexcept {
    raised_record* r = raised_list();
    raised_ = 0;
    while (r != nullptr) {
      raised_record* next = r->next;
      r->~raised_record();
      deallocate_frame(r, sizeof(raised_record));
      r = next;
    }
  }

  /// For a call's retry loop and a fan-out's pick: the value this task returns was inspected
  /// already (by its attempt, by its own task), so returning it inspects nothing again.
  void skip_output_inspection() noexcept { raised_ |= output_inspected_bit; }
  /// False after skip_output_inspection().
  [[nodiscard]] bool inspects_output() const noexcept { return (raised_ & output_inspected_bit) == 0; }

  /// The call this task runs in: the one the library gave it (`set_context`), or else the
  /// awaiting task's; null for a task awaited by a foreign coroutine.
  [[nodiscard]] call_context* context() noexcept {
    if ((link_ & context_tag) != 0) return reinterpret_cast<call_context*>(link_ & ~context_tag);
    if (link_ == 0) return nullptr;
    return find_context();
  }
  /// The library starts this task in `c` (a call's attempt, a root, a fan-out child).
  void set_context(call_context* c) noexcept { link_ = reinterpret_cast<std::uintptr_t>(c) | context_tag; }
  /// This task is awaited by `parent`, whose context is its own.
  void set_awaited_by(promise_base* parent) noexcept { link_ = reinterpret_cast<std::uintptr_t>(parent); }

  /// Who resumes when this task finishes (or fails); the no-op coroutine for a task nobody
  /// awaits (so that the end of a task needs no test).
  std::coroutine_handle<> continuation = std::noop_coroutine();

 protected:
  /// The word ~task_promise_common tests: zero unless there are re-raised exceptions to free
  /// (or the output-inspection flag is set).
  [[nodiscard]] std::uintptr_t raised_bits() const noexcept { return raised_; }

 private:
  static constexpr std::uintptr_t output_inspected_bit = 1;
  static_assert(alignof(raised_record) > output_inspected_bit, "the flag needs a free low bit");
  [[nodiscard]] raised_record* raised_list() const noexcept {
    return reinterpret_cast<raised_record*>(raised_ & ~output_inspected_bit);
  }

  // The exceptions re-raised in this task's body by the tasks it awaited (a list of
  // raised_record), and in bit 0 whether the output was inspected already: a flag of its own
  // cost every new frame one more store, where this word is zeroed anyway.
  std::uintptr_t raised_ = 0;

  // The context is looked up only when needed (a sleep, a nested call, a fan-out, the stop
  // token), not copied at each await: an await then stores its parent, which it has at hand,
  // instead of loading the parent's context (create+await: 0.70x a minimal task against 0.63x
  // with recycled frames, 1.11x against 1.06x with plain new; benchmarks/task.cpp). The
  // context is the tagged one: the store made at every await (the parent) is then a plain one.
  static constexpr std::uintptr_t context_tag = 1;
  static_assert(alignof(call_context) > context_tag, "the tag needs a free low bit");

  // Walks up to the nearest task that was given a context and writes it into each task on the
  // way, so a deep chain is walked once. The chain is this thread's: every task on it is
  // suspended, awaiting the one below.
  [[gnu::noinline]] call_context* find_context() noexcept {
    std::uintptr_t found = link_;
    while (found != 0 && (found & context_tag) == 0) found = reinterpret_cast<promise_base*>(found)->link_;
    for (promise_base* p = this; p->link_ != 0 && (p->link_ & context_tag) == 0;) {
      promise_base* up = reinterpret_cast<promise_base*>(p->link_);
      p->link_ = found;
      p = up;
    }
    return reinterpret_cast<call_context*>(found & ~context_tag);
  }

  // A call_context* (tagged) or the awaiting task's promise_base* (untagged); 0 for none.
  std::uintptr_t link_ = 0;
};

/// Makes a child's fault an exception in the awaiting body: the original exception when there
/// is one (so the caller's own `catch` clauses work), a `durable::error` for `fail`. `caller`
/// (null for a foreign awaiting coroutine) remembers the verdict.
[[noreturn]] inline void raise(const fault& f, promise_base* caller) {
  if (f.exception) {
    if (caller != nullptr) caller->remember_raised(f, f.exception, false);
    std::rethrow_exception(f.exception);
  }
  std::exception_ptr made = f.retry_after
                                ? std::make_exception_ptr(error(f.code, std::string(f.text()), *f.retry_after))
                                : std::make_exception_ptr(error(f.code, std::string(f.text())));
  if (caller != nullptr) caller->remember_raised(f, made, true);
  std::rethrow_exception(std::move(made));
}

/// The fault for the exception being handled in `self`'s body, classified once: the verdict
/// it got where it was first caught if a child raised it here, else through `Policy`.
template <class Policy>
fault fault_from_current_exception(const promise_base* self = nullptr) noexcept {
  std::exception_ptr e = std::current_exception();
  fault f;
  classification c;
  if (const raised_record* r = self != nullptr ? self->find_raised(e) : nullptr) {
    c = r->verdict;
    if (r->synthetic) {
      f.message = r->message;  // a `fail` or an inspection: no exception is the cause
      e = nullptr;
    }
  } else {
    c = classify<Policy>(e);
  }
  f.code = c.code;
  f.exception = std::move(e);
  f.retry_after = c.retry_after;
  f.final = c.final;
  f.reason = c.reason;
  return f;
}

inline fault fault_from_request(fail_request&& r) {
  fault f;
  if (r.code == status::ok) {
    f.code = status::invalid_argument;
    f.message = "durable::fail was given status::ok, which is not a failure";
  } else {
    f.code = r.code;
    if (r.text.data() == nullptr) {
      f.message = std::move(r.owned);
    } else {
      f.borrowed = r.text;  // valid while this task exists; release_fault copies them
    }
    f.retry_after = r.retry_after;
  }
  return f;
}

/// `co_yield forwarded_fault{f}` (the library's own tasks only): ends the task with a fault
/// that was classified already, as it is, and takes ownership of it. A raw pointer, not a
/// fault_ptr: g++ 12 may destroy a temporary with a non-trivial member twice when it is built
/// in a co_yield expression (GCC 100611), so the operand stays trivially destructible.
struct forwarded_fault {
  fault* owned;
};

/// Frees what a task that failed, or re-raised a child's failure, keeps until its frame goes
/// (and clears the output-inspection flag, which sends a call's retry loop here too).
template <class T>
[[gnu::noinline, gnu::cold]] void release_fault_and_raised(result<T>& outcome, promise_base& p) noexcept {
  outcome.drop_fault();
  p.release_raised();
}

/// Resumes whoever awaits the task: at the end of the body, or at `co_yield durable::fail`.
struct to_continuation {
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) const noexcept {
    return transfer_to(self.promise().continuation);
  }
  void await_resume() const noexcept {}
};

template <class T, class Policy>
class task_promise;

template <class T>
constexpr bool is_durable_task = false;
template <class T, class P>
constexpr bool is_durable_task<durable_task<T, P>> = true;

/// An awaitable of the library's own: a task, or a type that says so with a member
/// `using durable_library_awaiter = void;` (sleeps, retry waits, fan-outs, probes). A stop
/// request ends every wait of these at once; anything else awaited in a task is foreign.
template <class A>
concept library_awaitable = is_durable_task<A> || requires { typename A::durable_library_awaiter; };

/// A library awaiter, as `co_await` sees it from await_transform: a pointer to it (it stays where
/// the body put it: a local, or a temporary of the full expression).
template <class A>
struct library_awaiter_ref {
  A* awaiter;
  bool await_ready() { return awaiter->await_ready(); }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> h) {
    return awaiter->await_suspend(h);
  }
  decltype(auto) await_resume() { return awaiter->await_resume(); }
};

/// The awaiter that `co_await` takes from `a`: its operator co_await's, or `a` itself.
template <class A>
decltype(auto) awaiter_of(A&& a) {
  if constexpr (requires { static_cast<A&&>(a).operator co_await(); }) {
    return static_cast<A&&>(a).operator co_await();
  } else if constexpr (requires { operator co_await(static_cast<A&&>(a)); }) {
    return operator co_await(static_cast<A&&>(a));
  } else {
    return static_cast<A&&>(a);
  }
}

/// A foreign awaitable (a socket read, a channel, a callback library's) awaited in a task, as
/// the task awaits it: exactly that awaitable, plus one thing. While the task is suspended in
/// it, the attempt the task runs in (if its call could walk away from it: see
/// guarded_attempt.hpp) knows that it cannot be ended from outside, so a call that walks away
/// detaches it instead of waiting for it. The awaitable itself stays where `co_await` put it
/// (a temporary of the full expression, alive until the task resumes): nothing is moved.
template <class A>
class foreign_awaiter {
  using awaiter_type = decltype(awaiter_of(std::declval<A&&>()));

 public:
  explicit foreign_awaiter(A&& a) : awaiter_(awaiter_of(static_cast<A&&>(a))) {}
  foreign_awaiter(const foreign_awaiter&) = delete;
  foreign_awaiter& operator=(const foreign_awaiter&) = delete;

  bool await_ready() { return awaiter_.await_ready(); }

  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> h) {
    call_context* ctx = h.promise().context();
    tracker_ = ctx != nullptr && ctx->stop != nullptr ? ctx->stop->attempt : nullptr;
    // Before suspending: once the awaitable has the handle, this frame may be resumed (and
    // this object used) on another thread, so nothing here may be touched after it.
    attempt_tracker* tracker = tracker_;  // a copy: once suspended, this object is not ours
    if (tracker != nullptr) tracker->entered_foreign();
    using result = decltype(awaiter_.await_suspend(h));
    try {
      if constexpr (std::is_same_v<result, bool>) {
        const bool suspended = awaiter_.await_suspend(h);
        if (!suspended && tracker != nullptr) tracker->left_foreign();
        return suspended;
      } else {
        return awaiter_.await_suspend(h);
      }
    } catch (...) {  // it did not suspend: the exception goes on in the task
      if (tracker != nullptr) tracker->left_foreign();
      tracker_ = nullptr;
      throw;
    }
  }

  decltype(auto) await_resume() {
    if (tracker_ != nullptr) std::exchange(tracker_, nullptr)->left_foreign();
    return awaiter_.await_resume();
  }

 private:
  awaiter_type awaiter_;
  attempt_tracker* tracker_ = nullptr;
};

template <class Policy>
constexpr bool recycles_frames =
    Policy::frame_allocation_kind == frame_allocation::recycled && !DURABLE_DETAIL_ASAN;

template <class T, class Policy>
class task_promise_common : public promise_base {
 public:
  static void* operator new(std::size_t size) {
    if constexpr (recycles_frames<Policy>) return allocate_frame(size);
    return ::operator new(size);
  }
  static void operator delete(void* frame, std::size_t size) noexcept {
    if constexpr (recycles_frames<Policy>) {
      deallocate_frame(frame, size);
    } else {
      static_cast<void>(size);
      ::operator delete(frame);  // unsized: clang 14 leaves -fsized-deallocation off
    }
  }

  task_promise_common() noexcept = default;
  // Every frame's teardown passes here, and almost every task ends with neither a fault nor a
  // re-raised exception: one test for both, the freeing out of line (inline, it cost the
  // destroy path register saves), and then the members' own destructors are told both are
  // null so that they test nothing again (137 instructions per create+await against 139).
  ~task_promise_common() {
    if ((reinterpret_cast<std::uintptr_t>(outcome.fault_address()) | this->raised_bits()) != 0) [[unlikely]] {
      release_fault_and_raised(outcome, *this);
      if (outcome.fault_address() != nullptr || this->raised_bits() != 0) __builtin_unreachable();
    }
  }

  std::suspend_always initial_suspend() const noexcept { return {}; }
  to_continuation final_suspend() const noexcept { return {}; }

  /// Every `co_await` in the body: the library's own awaitables as they are; a foreign one
  /// wrapped so that the attempt it runs in knows it is suspended outside the library. Always a
  /// prvalue: g++ 12 copies an awaiter that await_transform returns by reference (the
  /// standard says it is used in place), and the library's awaiters cannot be copied.
  template <class A>
  auto await_transform(A&& awaitable) {
    using plain = std::remove_cvref_t<A>;
    if constexpr (library_awaitable<plain> && requires { static_cast<A&&>(awaitable).operator co_await(); }) {
      return static_cast<A&&>(awaitable).operator co_await();  // a task's awaiter, a probe
    } else if constexpr (library_awaitable<plain>) {
      return library_awaiter_ref<std::remove_reference_t<A>>{&awaitable};
    } else {
      return foreign_awaiter<A>(static_cast<A&&>(awaitable));
    }
  }

  void unhandled_exception() noexcept {
    outcome.emplace_fault([this] { return fault_from_current_exception<Policy>(this); });
  }

  /// `co_yield durable::fail(...)`: the body stops here and the awaiting caller resumes.
  to_continuation yield_value(fail_request request) {
    outcome.emplace_fault([&request] { return fault_from_request(std::move(request)); });
    return {};
  }
  to_continuation yield_value(forwarded_fault forwarded) noexcept {
    outcome.set_fault(fault_ptr(forwarded.owned));
    return {};
  }
  template <class U>
  std::suspend_never yield_value(U&&) {
    static_assert(always_false<U>,
                  "co_yield in a durable_task accepts only durable::fail(status, message)");
    return {};
  }

  result<T> outcome;
};

template <class T, class Policy>
class task_promise : public task_promise_common<T, Policy> {
 public:
  durable_task<T, Policy> get_return_object() noexcept;

  template <class U>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) {
    if constexpr (std::is_reference_v<T>) {
      T ref = std::forward<U>(value);
      this->outcome.set_value(ref);
    } else {
      this->outcome.set_value(std::forward<U>(value));
    }
    using entry = typename Policy::outputs::template entry_for<T>;
    if constexpr (!std::is_void_v<entry>) {
      if (this->inspects_output()) {
        const status verdict = entry::check(stored_value());
        if (verdict != status::ok) {
          fault f;
          f.code = verdict;
          f.message = "output inspection returned ";
          f.message += to_string(verdict);
          this->outcome.set_fault(std::move(f));
        }
      }
    }
  }

 private:
  const std::remove_reference_t<T>& stored_value() noexcept {
    if constexpr (std::is_reference_v<T>) {
      return *this->outcome.storage();
    } else {
      return this->outcome.storage();
    }
  }
};

template <class Policy>
class task_promise<void, Policy> : public task_promise_common<void, Policy> {
 public:
  durable_task<void, Policy> get_return_object() noexcept;
  void return_void() noexcept { this->outcome.set_value(); }
};

/// Awaits a task and yields its result, re-raising its failure in the awaiting body. Owns the
/// awaited frame from `operator co_await` on, so the task object it came from may be a
/// temporary that g++ 12 destroys early or twice (GCC 100611, 107288): it is empty by then.
template <class T, class Policy>
class task_awaiter {
 public:
  explicit task_awaiter(std::coroutine_handle<task_promise<T, Policy>> child) noexcept
      : child_(child) {}
  task_awaiter(task_awaiter&& other) noexcept : child_(std::exchange(other.child_, {})) {}
  task_awaiter& operator=(task_awaiter&&) = delete;
  ~task_awaiter() {
    if (child_) std::exchange(child_, {}).destroy();
  }

  bool await_ready() const noexcept { return false; }
  template <class Caller>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Caller> caller) noexcept {
    auto& p = child_.promise();
    p.continuation = caller;
    if constexpr (std::is_base_of_v<promise_base, Caller>) {
      p.set_awaited_by(&caller.promise());
      caller_ = &caller.promise();
    }
    return transfer_to(child_);
  }
  T await_resume() {
    result<T>& out = child_.promise().outcome;
    if (out.has_fault()) [[unlikely]] raise(out.get_fault(), caller_);
    if constexpr (std::is_void_v<T>) {
      release_child();
    } else {
      T value = out.take_value();
      release_child();
      return value;
    }
  }

 private:
  // The child is freed here, not by the destructor (which frees it only when awaiting threw),
  // and forgotten after the call: the destructor's test then folds away.
  void release_child() noexcept {
    const auto child = child_;
    child.destroy();
    child_ = {};
  }

  std::coroutine_handle<task_promise<T, Policy>> child_;
  promise_base* caller_ = nullptr;
};

/// Awaits a task inside the library (a call's attempt, a root) and yields its outcome without
/// raising anything: the awaiting code decides what a fault means.
template <class T, class Policy>
struct outcome_awaiter {
  using durable_library_awaiter = void;
  std::coroutine_handle<task_promise<T, Policy>> child;
  call_context* ctx;

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    auto& p = child.promise();
    p.continuation = caller;
    p.set_context(ctx);
    return transfer_to(child);
  }
  result<T>& await_resume() const noexcept { return child.promise().outcome; }
};

/// Resumes a task whose context the library set already (a call's attempt, a spawned root's
/// task) until it ends; its outcome stays in its promise. One word in the awaiting frame,
/// which matters for a call waiting for its retry.
template <class Promise>
struct resume_awaiter {
  using durable_library_awaiter = void;
  std::coroutine_handle<Promise> child;
  explicit resume_awaiter(std::coroutine_handle<Promise> h) noexcept : child(h) {}
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) const noexcept {
    child.promise().continuation = caller;
    return transfer_to(child);
  }
  void await_resume() const noexcept {}
};

/// Out of line and cold: the check that calls it is in every `co_await` of a task.
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_awaiting_empty_task() {
  throw std::logic_error("durable: awaiting an empty (moved-from) durable_task");
}

/// `co_await promise_probe{}` yields the awaiting coroutine's own promise without suspending.
struct promise_probe {
  using durable_library_awaiter = void;
  promise_base* found = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    found = &self.promise();
    return false;
  }
  promise_base& await_resume() const noexcept { return *found; }
};

}  // namespace detail

/// A lazy, move-only coroutine producing a `T` (a value, a reference, or `void`). Nothing runs
/// until it is awaited (from another durable_task) or run on a `durable::runtime`. An exception
/// leaving the body is classified once, through `Policy`, where it is caught; awaiting the
/// task rethrows it in the caller with that status attached.
template <class T, class Policy>
class [[nodiscard]] durable_task {
  static_assert(!std::is_rvalue_reference_v<T>,
                "durable::durable_task<T&&> is not supported: return T, or T& for a reference");
  static_assert(detail::is_policy<Policy>,
                "durable::durable_task<T, Policy>: Policy must be a durable::policy<...>");

 public:
  using promise_type = detail::task_promise<T, Policy>;
  /// What awaiting the task yields.
  using value_type = T;
  /// The compile-time policy that classifies this task's failures.
  using policy_type = Policy;

  /// An empty task; awaiting it is an error.
  durable_task() noexcept = default;
  explicit durable_task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  durable_task(durable_task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  durable_task& operator=(durable_task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  durable_task(const durable_task&) = delete;
  durable_task& operator=(const durable_task&) = delete;
  /// Destroys the coroutine, finished or not, and every task it was awaiting.
  ~durable_task() { destroy(); }

  /// True unless the task is empty (default-constructed or moved from).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

  /// Runs the task to completion as part of the awaiting task; yields its value or rethrows
  /// its failure. Awaiting consumes the task: afterwards it is empty.
  detail::task_awaiter<T, Policy> operator co_await() && {
    if (!handle_) [[unlikely]] detail::throw_awaiting_empty_task();
    return detail::task_awaiter<T, Policy>(std::exchange(handle_, {}));
  }
  /// Awaiting a named task consumes it too (`co_await t;` is `co_await std::move(t);`).
  detail::task_awaiter<T, Policy> operator co_await() & { return std::move(*this).operator co_await(); }

  /// The coroutine handle, for the library's own drivers.
  [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }

 private:
  void destroy() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <class T, class Policy>
durable_task<T, Policy> task_promise<T, Policy>::get_return_object() noexcept {
  return durable_task<T, Policy>(std::coroutine_handle<task_promise>::from_promise(*this));
}
template <class Policy>
durable_task<void, Policy> task_promise<void, Policy>::get_return_object() noexcept {
  return durable_task<void, Policy>(std::coroutine_handle<task_promise>::from_promise(*this));
}

/// `co_await resume_task(t)`: a `resume_awaiter` for a task whose context is set. (Takes the
/// task, not its handle: g++ would keep a handle built in the co_await expression in the
/// awaiting frame.)
template <class T, class Policy>
resume_awaiter<task_promise<T, Policy>> resume_task(const durable_task<T, Policy>& task) noexcept {
  return resume_awaiter<task_promise<T, Policy>>(task.handle());
}

}  // namespace detail

}  // namespace durable
