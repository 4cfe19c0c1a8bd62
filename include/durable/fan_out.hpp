// durable/fan_out.hpp — running several tasks at once: gather, any, race.
#pragma once

#include <array>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <limits>
#include <optional>
#include <iterator>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/context.hpp"
#include "detail/journal_scope.hpp"
#include "detail/result.hpp"
#include "error.hpp"
#include "runtime.hpp"
#include "status.hpp"
#include "task.hpp"

namespace durable {

namespace detail {

/// What decides a fan-out: `all` (gather) the first failure, `any` the first success, `race`
/// the first task to end.
enum class fan_out_mode : std::uint8_t { all, any, race };

/// Passes a stop request on from the fan-out's own token to its children's source.
struct forward_stop {
  std::stop_source* to;
  void operator()() const noexcept { to->request_stop(); }
};

/// What a fan-out and its children share. It lives in the fan-out's frame: the fan-out resumes
/// only after every child has ended, so it outlives them all (structured concurrency).
class fan_out_state {
 public:
  static constexpr std::size_t undecided = std::numeric_limits<std::size_t>::max();

  fan_out_state(fan_out_mode mode, std::size_t children) noexcept : mode_(mode), remaining_(children) {}
  fan_out_state(const fan_out_state&) = delete;
  fan_out_state& operator=(const fan_out_state&) = delete;

  /// Called by child `index` when it has ended. The child that decides the outcome asks the
  /// others to stop; the last child to end resumes the fan-out.
  void child_done(std::size_t index, bool succeeded) noexcept {
    const bool decides = mode_ == fan_out_mode::race || (mode_ == fan_out_mode::any) == succeeded;
    if (decides) {
      std::size_t expected = undecided;
      if (decided_.compare_exchange_strong(expected, index, std::memory_order_acq_rel)) source_.request_stop();
    }
    // acq_rel: the last child sees every other child's slot, and so does the fan-out it resumes.
    // Nothing here may be touched after the decrement, except by the last child.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) rt->post(waiter);
  }

  /// The child that decided the outcome, or `undecided`. Read after every child has ended.
  [[nodiscard]] std::size_t decided() const noexcept { return decided_.load(std::memory_order_acquire); }

  /// Links the fan-out's own stop token (if it can be stopped) to its children's. The children
  /// run in the attempt the fan-out runs in, if any.
  void link(const stop_scope* parent) {
    if (parent == nullptr) return;
    token_.attempt = parent->attempt;
    if (parent->stop_possible()) link_.emplace(*parent, forward_stop{&source_});
  }

  /// In a journaled invocation: the fan-out takes one position in `parent`, and child i's calls
  /// are numbered under [that position, i].
  void journal_under(journal_scope* parent) {
    if (parent != nullptr) scope_ = scope_ref(parent->enter());
  }
  /// The scope of child `index` (empty outside a journaled invocation).
  [[nodiscard]] scope_ref child_scope(std::size_t index) const {
    return scope_ ? scope_ref(scope_->child(index)) : scope_ref();
  }

  runtime* rt = nullptr;
  std::coroutine_handle<> waiter;
  /// What the children's contexts point at.
  const stop_scope& token() const noexcept { return token_; }

 private:
  fan_out_mode mode_;
  std::atomic<std::size_t> remaining_;
  std::atomic<std::size_t> decided_{undecided};
  std::stop_source source_;
  stop_scope token_{source_.get_token()};
  std::optional<std::stop_callback<forward_stop>> link_;
  scope_ref scope_;
};

using root_handle = std::coroutine_handle<root_task::promise_type>;

/// One child of a fan-out, as a root of its own on the runtime: runs the task under the
/// fan-out's stop token and leaves its outcome in `slot`.
template <class T, class Policy>
root_task run_fan_out_child(durable_task<T, Policy> task, fan_out_state* state, result<T>* slot, std::size_t index) {
  {
    durable_task<T, Policy> owned = std::move(task);
    const scope_ref scope = state->child_scope(index);
    call_context context{state->rt, {}, &state->token(), scope.get()};
    result<T>& out = co_await outcome_awaiter<T, Policy>{owned.handle(), &context};
    slot->take_from(out);
  }  // the child's frames are gone before the fan-out can resume
  const bool succeeded = !slot->has_fault();
  state->rt->forget(co_await root_probe{});
  state->child_done(index, succeeded);
}

/// The children's roots, made before any starts (making one may throw); destroys the ones
/// that never started.
template <class Roots>
struct child_roots {
  Roots roots{};
  bool started = false;

  child_roots() = default;
  explicit child_roots(std::size_t n) : roots(n) {}
  child_roots(const child_roots&) = delete;
  child_roots& operator=(const child_roots&) = delete;
  ~child_roots() {
    if (started) return;
    for (root_handle h : roots)
      if (h) h.destroy();
  }
};

/// Starts every child and suspends the fan-out until the last one has ended.
class fan_out_launch {
 public:
  using durable_library_awaiter = void;
  fan_out_launch(fan_out_state& state, std::span<root_handle> roots, bool& started) noexcept
      : state_(state), roots_(roots), started_(started) {}

  bool await_ready() const noexcept { return roots_.empty(); }

  // noinline: once the last child is started, this frame may be resumed and freed on another
  // thread (llvm 56301).
  template <class Promise>
  [[gnu::noinline]] void await_suspend(std::coroutine_handle<Promise> h) {
    const call_context* ctx = h.promise().context();
    if (ctx == nullptr || ctx->rt == nullptr) {
      throw std::logic_error("durable::gather / any / race must run on a durable::runtime");
    }
    state_.rt = ctx->rt;
    state_.waiter = h;
    state_.link(ctx->stop);  // a stop already requested stops the children before they start
    state_.journal_under(ctx->scope);
    started_ = true;
    start_all(*ctx->rt, roots_);
  }
  void await_resume() const noexcept {}

 private:
  // noexcept: the children start all or none; only running out of memory can stop this half-way.
  static void start_all(runtime& rt, std::span<root_handle> roots) noexcept {
    const std::size_t n = roots.size();
    root_handle* first = roots.data();
    for (std::size_t i = 0; i < n; ++i) rt.adopt(root_task{first[i]});
  }

  fan_out_state& state_;
  std::span<root_handle> roots_;
  bool& started_;
};

/// What `gather` gives back for a task of `T`: the value, or `std::monostate` for `void`.
template <class T>
using gathered_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
gathered_t<T> take_gathered(result<T>& slot) {
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    return slot.take_value();
  }
}

template <class... T, std::size_t... I>
std::tuple<gathered_t<T>...> take_all(std::tuple<result<T>...>& slots, std::index_sequence<I...>) {
  return std::tuple<gathered_t<T>...>(take_gathered(std::get<I>(slots))...);
}

template <class... T, std::size_t... I>
fault* release_fault_at(std::tuple<result<T>...>& slots, std::size_t index, std::index_sequence<I...>) noexcept {
  fault* f = nullptr;
  ((I == index ? (f = std::get<I>(slots).release_fault().release(), 0) : 0), ...);
  return f;
}

template <class T>
void check_tasks(const std::vector<T>& tasks, const char* who) {
  for (const auto& t : tasks) {
    if (!t.valid()) throw std::logic_error(std::string(who) + ": a task is empty (moved from?)");
  }
}

template <class... T, class... P, std::size_t... I>
void make_children(std::span<root_handle> roots, fan_out_state& state, std::tuple<result<T>...>& slots,
                   std::index_sequence<I...>, durable_task<T, P>&... tasks) {
  ((roots[I] = run_fan_out_child(std::move(tasks), &state, &std::get<I>(slots), I).handle), ...);
}

template <class... T, class... P>
durable_task<std::tuple<gathered_t<T>...>> gather_tasks(durable_task<T, P>... tasks) {
  std::tuple<result<T>...> slots;
  fan_out_state state(fan_out_mode::all, sizeof...(T));
  child_roots<std::array<root_handle, sizeof...(T)>> children;
  make_children(children.roots, state, slots, std::index_sequence_for<T...>{}, tasks...);
  co_await fan_out_launch(state, children.roots, children.started);
  if (const std::size_t failed = state.decided(); failed != fan_out_state::undecided) {
    fault* f = release_fault_at(slots, failed, std::index_sequence_for<T...>{});
    co_yield forwarded_fault{f};
  }
  co_return take_all(slots, std::index_sequence_for<T...>{});
}

/// Makes the failure of an `any` whose tasks all failed: it keeps each task's cause, and is
/// retryable when some task's failure was (so that the enclosing call may try again).
template <class T>
fault* all_failed_fault(std::vector<result<T>>& slots) noexcept {
  return make_fault_with([&slots] {
    std::vector<std::exception_ptr> causes;
    causes.reserve(slots.size());
    const fault* chosen = nullptr;  // the first retryable failure, else the first one
    for (auto& slot : slots) {
      const fault& f = slot.get_fault();
      causes.push_back(f.exception ? f.exception : std::make_exception_ptr(error(f.code, std::string(f.text()))));
      if (chosen == nullptr && !f.final && is_retryable(f.code)) chosen = &f;
    }
    if (chosen == nullptr) chosen = &slots.front().get_fault();
    fault out;
    out.code = chosen->code;
    out.final = chosen->final;
    out.reason = chosen->reason;
    out.retry_after = chosen->retry_after;
    out.exception = std::make_exception_ptr(all_failed(chosen->code, chosen->reason, std::move(causes)));
    return out;
  }).release();
}

template <class T, class P>
durable_task<T, P> pick_one(fan_out_mode mode, std::vector<durable_task<T, P>> tasks) {
  {
    promise_base& self = co_await promise_probe{};
    self.skip_output_inspection();  // each task inspected its own value
  }
  std::vector<result<T>> slots(tasks.size());
  fan_out_state state(mode, tasks.size());
  child_roots<std::vector<root_handle>> children(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    children.roots[i] = run_fan_out_child(std::move(tasks[i]), &state, &slots[i], i).handle;
  }
  co_await fan_out_launch(state, children.roots, children.started);
  const std::size_t winner = state.decided();
  fault* f = nullptr;
  if (winner == fan_out_state::undecided) {  // `any`, and every task failed
    f = all_failed_fault(slots);
  } else if (slots[winner].has_fault()) {  // `race`: the first to end failed
    f = slots[winner].release_fault().release();
  } else if constexpr (std::is_void_v<T>) {
    co_return;
  } else {
    co_return slots[winner].take_value();
  }
  co_yield forwarded_fault{f};
  std::terminate();  // never reached: a task is not resumed after co_yield of a fault
}

template <class T, class P>
durable_task<std::vector<gathered_t<T>>> gather_range(std::vector<durable_task<T, P>> tasks) {
  std::vector<result<T>> slots(tasks.size());
  fan_out_state state(fan_out_mode::all, tasks.size());
  child_roots<std::vector<root_handle>> children(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    children.roots[i] = run_fan_out_child(std::move(tasks[i]), &state, &slots[i], i).handle;
  }
  co_await fan_out_launch(state, children.roots, children.started);
  if (const std::size_t failed = state.decided(); failed != fan_out_state::undecided) {
    fault* f = slots[failed].release_fault().release();
    co_yield forwarded_fault{f};
  }
  std::vector<gathered_t<T>> values;
  values.reserve(slots.size());
  for (auto& slot : slots) values.push_back(take_gathered(slot));
  co_return values;
}

template <class Task>
concept task_argument = is_durable_task<std::remove_cvref_t<Task>> && !std::is_const_v<std::remove_reference_t<Task>>;

// What a range-for over a `Range` gives (begin/end as members, found by ADL, or an array's).
// Written with <iterator> rather than <ranges>, which costs a program that only retries over
// half a second of g++ per translation unit.
namespace range_access {
using std::begin;
using std::end;
template <class Range>
concept iterable = requires(Range& r) {
  begin(r) != end(r);
  ++std::declval<decltype(begin(r))&>();
  *begin(r);
};
template <class Range>
using element_t = std::remove_cvref_t<decltype(*begin(std::declval<Range&>()))>;
}  // namespace range_access

template <class Range>
concept task_range = range_access::iterable<Range> && is_durable_task<range_access::element_t<Range>>;

/// Moves the tasks out of `range` (consuming it, like awaiting a task does).
template <class Range>
auto take_tasks(Range&& range) {
  std::vector<range_access::element_t<Range>> tasks;
  for (auto&& t : range) tasks.push_back(std::move(t));
  return tasks;
}

template <class First, class... Rest>
auto same_type_tasks(const char* who, First&& first, Rest&&... rest) {
  using task = std::remove_cvref_t<First>;
  static_assert((std::is_same_v<task, std::remove_cvref_t<Rest>> && ...),
                "durable::any / durable::race: every task must have the same type (the same value type "
                "and policy), since the result is one of them");
  std::vector<task> tasks;
  tasks.reserve(1 + sizeof...(Rest));
  tasks.push_back(std::move(first));
  (tasks.push_back(std::move(rest)), ...);
  check_tasks(tasks, who);
  return tasks;
}

}  // namespace detail

/// Runs every task at once (interleaved on one thread, in parallel on workers) and yields a
/// tuple of their values, `std::monostate` standing for `void`. The first failure asks the
/// other tasks to stop, and, once they have all ended, is what the awaiting task sees. Takes
/// the tasks over (a named task passed here is consumed, as by `co_await`).
template <detail::task_argument... Tasks>
auto gather(Tasks&&... tasks) {
  if (!(tasks.valid() && ...)) throw std::logic_error("durable::gather: a task is empty (moved from?)");
  return detail::gather_tasks(std::move(tasks)...);
}

/// `gather` for a range of tasks of one type: yields a `std::vector` of their values, in the
/// range's order (`std::monostate` for `void`). The range's tasks are consumed.
template <detail::task_range Range>
auto gather(Range&& range) {
  auto tasks = detail::take_tasks(std::forward<Range>(range));
  detail::check_tasks(tasks, "durable::gather");
  return detail::gather_range(std::move(tasks));
}

/// Runs every task at once and yields the value of the first one to succeed; the others are
/// asked to stop and have ended before the awaiting task resumes. Fails only if every task
/// failed, with a `durable::all_failed` that keeps each task's cause. The tasks must have one
/// type.
template <detail::task_argument First, detail::task_argument... Rest>
auto any(First&& first, Rest&&... rest) {
  return detail::pick_one(detail::fan_out_mode::any,
                          detail::same_type_tasks("durable::any", std::forward<First>(first), std::forward<Rest>(rest)...));
}

/// `any` for a non-empty range of tasks.
template <detail::task_range Range>
auto any(Range&& range) {
  auto tasks = detail::take_tasks(std::forward<Range>(range));
  if (tasks.empty()) throw std::invalid_argument("durable::any: no tasks to choose from");
  detail::check_tasks(tasks, "durable::any");
  return detail::pick_one(detail::fan_out_mode::any, std::move(tasks));
}

/// Runs every task at once and ends like the first one to end, with its value or its failure;
/// the others are asked to stop and have ended before the awaiting task resumes. The tasks
/// must have one type.
template <detail::task_argument First, detail::task_argument... Rest>
auto race(First&& first, Rest&&... rest) {
  return detail::pick_one(detail::fan_out_mode::race,
                          detail::same_type_tasks("durable::race", std::forward<First>(first), std::forward<Rest>(rest)...));
}

/// `race` for a non-empty range of tasks.
template <detail::task_range Range>
auto race(Range&& range) {
  auto tasks = detail::take_tasks(std::forward<Range>(range));
  if (tasks.empty()) throw std::invalid_argument("durable::race: no tasks to race");
  detail::check_tasks(tasks, "durable::race");
  return detail::pick_one(detail::fan_out_mode::race, std::move(tasks));
}

}  // namespace durable
