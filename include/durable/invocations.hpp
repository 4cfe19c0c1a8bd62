// durable/invocations.hpp — journaled invocations: functions that survive a crash.
//
//   durable::file_journal journal{"app.journal"};
//   durable::runtime rt;
//   durable::invocations invocations{rt, journal};
//   invocations.register_function(onboard);
//   invocations.recover();                            // resumes what a crash interrupted
//   auto done = invocations.start("user-42", onboard, "ada");
//   done.get();
//
// An invocation is a call of a registered `durable::function`, identified by an id (an
// idempotency key) and journaled: its start, and then every call and sleep inside it, are
// recorded in an `invocation_store` before the code that depends on them goes on. After a crash,
// `recover` runs every unfinished invocation again, and each call the store saw complete
// returns its recorded outcome without running. This layer sits above the runtime (which only
// schedules) and the calls (which read and write their records through the abstract
// `journal_scope`, implemented here by `invocation_scope`), and below the stores: a `journal`
// (file_journal, memory_journal) is kept through a `journal_store`; `memory_store` and a shared
// database implement the store interface directly.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "detail/invocation_journal.hpp"
#include "detail/invocation_scope.hpp"
#include "error.hpp"
#include "event.hpp"
#include "invocation_store.hpp"
#include "journal.hpp"
#include "journal_records.hpp"
#include "journal_store.hpp"
#include "policy.hpp"
#include "runtime.hpp"
#include "status.hpp"
#include "task.hpp"

namespace durable {

/// How journaled invocations are kept in a journal (`invocations{rt, journal, options}`).
struct invocations_options {
  /// Automatic journal compaction. Once the journal has grown by this many records since the
  /// last compaction (and by at least as many as that compaction kept), the next invocation to
  /// finish condenses the journal: every finished invocation keeps only its started record and
  /// its outcome, so that `start` of its id still returns that outcome after a restart; running
  /// invocations keep every record. Ids are never forgotten by it (only `compact_journal`
  /// forgets). It runs on the thread that finished the invocation, and a failure is a
  /// `compaction_failed` event, not an error. 0 turns it off.
  std::uint64_t compact_after_records = 100'000;
};

/// How `invocations::serve` takes work from a store that several workers share.
struct serve_options {
  /// At most this many invocations run here at once (claimed or started here, not finished):
  /// a claim takes only what is free.
  std::size_t capacity = 16;
  /// With nothing to claim, how long one wait for work (the store's `wait_for_work`) lasts
  /// before the next claim; `serve` returns within about this long of a stop request.
  std::chrono::milliseconds poll = std::chrono::milliseconds(200);
  /// While this serves, an invocation whose body sleeps at least this long (`durable::sleep_for`
  /// directly in its function, not inside a call it makes) is parked in the store instead of
  /// kept here: its run ends, and whichever worker is free when the sleep ends takes it up
  /// again from its records. Zero: never.
  std::chrono::milliseconds park_after = std::chrono::minutes(1);
};

namespace detail {
class invocation_registry;
}

/// A journaled invocation, from `invocations::start`: its id, and its outcome once it has one
/// (now, or in an earlier run of the program).
template <class T>
class invocation {
 public:
  /// The id it was started with.
  [[nodiscard]] const std::string& id() const noexcept { return inv_->id(); }
  /// True once it has finished, successfully or not.
  [[nodiscard]] bool finished() const { return inv_->refresh(); }
  /// Cancels it (see `invocations::cancel`). False if it had finished already.
  bool cancel() { return inv_->cancel("the invocation was cancelled"); }
  /// Waits until it has finished (driving the runtime, like `runtime::run`) and returns its
  /// value, or throws its `durable::failure` (whose cause is not kept across a restart).
  T get() {
    rt_->wait_until_done(inv_->done, "durable::invocation::get");
    if (!inv_->outcome()) inv_->wait_for_stored_outcome();  // another worker runs it
    const call_completed_record done = *inv_->outcome();
    if (done.reason == failure_reason::journal_failed) throw journal_failure(done.attempts, function_, nullptr, done.message);
    if (done.code != status::ok) throw detail::recorded_failure(done, function_);
    if constexpr (std::is_void_v<T>) {
      static_cast<void>(decode<std::monostate>(done.value));
    } else {
      return decode<T>(done.value);
    }
  }

 private:
  friend class detail::invocation_registry;
  invocation(runtime& rt, std::shared_ptr<detail::invocation_journal> inv, std::string_view function)
      : rt_(&rt), inv_(std::move(inv)), function_(function) {}

  runtime* rt_;
  std::shared_ptr<detail::invocation_journal> inv_;
  std::string_view function_;
};

namespace detail {

/// The parameter types of a callable with one (non-template) call operator, or of a function.
template <class F>
struct parameters_of : parameters_of<decltype(&F::operator())> {};
template <class R, class... A>
struct parameters_of<R (*)(A...)> {
  using tuple = std::tuple<std::decay_t<A>...>;
};
template <class R, class C, class... A>
struct parameters_of<R (C::*)(A...) const> {
  using tuple = std::tuple<std::decay_t<A>...>;
};
template <class R, class C, class... A>
struct parameters_of<R (C::*)(A...)> {
  using tuple = std::tuple<std::decay_t<A>...>;
};

/// A callable whose parameters can be named (not a generic lambda).
template <class F>
concept has_parameters = requires { typename parameters_of<F>::tuple; };

/// The body of a journaled invocation: the function's call on the decoded arguments, as a plain
/// task, so that the call is the invocation's first (path [0]).
template <class Function, class Tuple>
durable_task<> invocation_body(Function f, Tuple args) {
  co_await std::apply([&f](auto&... a) { return f(std::move(a)...); }, args);
}

/// What `invocations` and its running invocations share: the registry of functions, the
/// invocations running here, and the store. Held by every running invocation too, so that one
/// finishing after its `invocations` object was destroyed (while the runtime still ran it)
/// touches nothing freed.
class invocation_registry : public std::enable_shared_from_this<invocation_registry> {
 public:
  using make_body = std::function<durable_task<>(std::span<const std::byte>)>;

  invocation_registry(runtime& rt, invocation_store& store, std::unique_ptr<invocation_store> owned)
      : rt_(&rt), store_(&store), owned_(std::move(owned)) {}

  [[nodiscard]] runtime& rt() const noexcept { return *rt_; }
  [[nodiscard]] invocation_store& store() const noexcept { return *store_; }

  template <class Function>
  void register_function(const Function& f) {
    using callable = std::remove_cvref_t<decltype(f.callable())>;
    static_assert(has_parameters<callable>,
                  "durable::invocations::register_function: the function's callable must have concrete "
                  "parameter types (not a generic lambda): they are decoded from the journal");
    if constexpr (has_parameters<callable>) {
      using args_tuple = typename parameters_of<callable>::tuple;
      static_assert(encodable<args_tuple>,
                    "durable::invocations::register_function: every parameter type needs a durable::codec");
      using task = decltype(std::apply(f, std::declval<args_tuple>()));
      using value = typename task::value_type;
      static_assert(std::is_void_v<value> || encodable<value>,
                    "durable::invocations::register_function: the result type needs a durable::codec");
      require_encodable<args_tuple>();
      if constexpr (!std::is_void_v<value>) require_encodable<value>();
      make_body make = [f](std::span<const std::byte> bytes) { return invocation_body(f, decode<args_tuple>(bytes)); };
      std::lock_guard lock(mutex_);
      if (!functions_.emplace(std::string(f.name()), std::move(make)).second) {
        throw std::invalid_argument("durable::invocations::register_function: a function named '" +
                                    std::string(f.name()) + "' is registered already");
      }
    }
  }

  // `run_here` false: submit, which leaves a new or unheld invocation ready in the store.
  template <class Function, class... A>
  auto start(bool run_here, std::string id, const Function& f, A&&... args) {
    using callable = std::remove_cvref_t<decltype(f.callable())>;
    using args_tuple = typename parameters_of<callable>::tuple;
    using value = typename decltype(std::apply(f, std::declval<args_tuple>()))::value_type;
    std::shared_ptr<invocation_journal> inv;
    make_body make;
    {
      std::lock_guard lock(mutex_);
      const auto found = functions_.find(std::string(f.name()));
      if (found == functions_.end()) {
        throw std::logic_error("durable::invocations::start: register_function(" + std::string(f.name()) +
                               ") first, so that recovery after a restart can find it");
      }
      if (const auto existing = running_.find(id); existing != running_.end()) {
        refuse_other_function(id, existing->second->started().function, f.name());
        return invocation<value>(*rt_, existing->second, f.name());
      }
      if (const auto kept = unjournaled_.find(id); kept != unjournaled_.end()) {
        refuse_other_function(id, kept->second->started().function, f.name());
        return invocation<value>(*rt_, kept->second, f.name());
      }
      // Listed as running before the store is asked (outside the lock: the started record is
      // made durable there), so that a second start of the id meanwhile gets this handle.
      inv = std::make_shared<invocation_journal>(
          *store_, invocation_started_record{id, std::string(f.name()), encode(args_tuple(std::forward<A>(args)...))});
      running_.emplace(id, inv);
      make = found->second;
    }
    start_reply reply;
    try {
      try {
        reply = store_->start(id, f.name(), encode(inv->started()));
      } catch (const std::exception& e) {
        throw journal_failure(1, f.name(), std::current_exception(),
                              "the journal could not record the start of invocation '" + id + "': " + e.what());
      }
      if (reply.claimed) {
        inv->take(std::move(*reply.claimed));
        if (inv->started().function != f.name()) {  // an unfinished invocation of another function
          store_->release(inv->owner());
          refuse_other_function(id, inv->started().function, f.name());
        }
      } else {
        refuse_other_function(id, reply.existing->function, f.name());
      }
    } catch (...) {
      std::lock_guard lock(mutex_);
      running_.erase(id);
      throw;
    }
    if (reply.claimed && !run_here) {
      store_->release(inv->owner());
      reply.existing = invocation_view{id, std::string(f.name()), stored_state::ready, std::nullopt, false};
      reply.claimed.reset();
    }
    if (!reply.claimed) {  // finished, or run by another worker: this handle only reads it
      std::lock_guard lock(mutex_);
      running_.erase(id);
      inv->watch_elsewhere(reply.existing->outcome);
      rt_->set_done(inv->done);  // wakes a second start's handle that waits meanwhile
      return invocation<value>(*rt_, std::move(inv), f.name());
    }
    run(inv, std::move(make));
    return invocation<value>(*rt_, std::move(inv), f.name());
  }

  void recover() {
    for (const auto& [id, count] : store_->skipped_records()) {
      const std::string what = "skipped " + std::to_string(count) + " journal record" + (count == 1 ? "" : "s") +
                               " of invocation '" + id + "', which the journal never started";
      rt_->emit_failure(event_kind::records_skipped, id, 0, status::ok, std::nullopt, nullptr, what);
    }
    static_cast<void>(claim(std::numeric_limits<std::size_t>::max(), "recover"));
  }

  // Takes up to `max` invocations from the store and runs them; how many it took.
  std::size_t claim(std::size_t max, const char* who) {
    std::vector<claimed_invocation> claimed = store_->claim(max);
    std::vector<std::pair<std::shared_ptr<invocation_journal>, make_body>> resume;
    {
      std::lock_guard lock(mutex_);
      for (const claimed_invocation& c : claimed) {
        if (const std::string function = decode<invocation_started_record>(c.started.payload).function;
            !functions_.contains(function)) {
          for (const claimed_invocation& back : claimed) store_->release(back.owner);
          throw std::logic_error(std::string("durable::invocations::") + who + ": invocation '" + c.owner.invocation +
                                 "' runs '" + function + "', which is not registered");
        }
      }
      for (claimed_invocation& c : claimed) {
        auto inv = std::make_shared<invocation_journal>(*store_, invocation_started_record{});
        inv->take(std::move(c));
        resume.emplace_back(inv, functions_.at(inv->started().function));
        running_.emplace(inv->id(), std::move(inv));
      }
    }
    for (auto& [inv, make] : resume) run(inv, std::move(make));
    return resume.size();
  }

  std::size_t serve(const std::stop_token& stop, const serve_options& options) {
    if (rt_->worker_count() == 0) {
      throw std::logic_error("durable::invocations::serve: the runtime has no worker threads to run what it claims "
                             "(runtime_options::workers)");
    }
    if (options.capacity == 0) throw std::invalid_argument("durable::invocations::serve: capacity must be at least 1");
    struct parking_while_serving {
      invocation_registry* self;
      ~parking_while_serving() {
        std::lock_guard lock(self->mutex_);
        self->park_after_.reset();
      }
    } parking{this};
    {
      std::lock_guard lock(mutex_);
      if (options.park_after.count() > 0) park_after_ = options.park_after;
    }
    std::size_t taken = 0;
    while (!stop.stop_requested()) {
      std::size_t free = 0;
      {
        std::unique_lock lock(mutex_);
        // Full: wait until one of ours finishes (or the stop, or a poll's time, for safety).
        finished_here_.wait_for(lock, stop, options.poll, [&] { return running_.size() < options.capacity; });
        if (stop.stop_requested()) break;
        free = running_.size() < options.capacity ? options.capacity - running_.size() : 0;
      }
      if (free == 0) continue;
      const std::size_t now = claim(free, "serve");
      taken += now;
      if (now == 0) store_->wait_for_work(options.poll);
    }
    return taken;
  }

  void compact_journal() {
    static_cast<void>(store_->forget_finished());
    std::lock_guard lock(mutex_);
    unjournaled_.clear();
  }

  bool cancel(const std::string& id) {
    std::shared_ptr<invocation_journal> inv;
    {
      std::lock_guard lock(mutex_);
      if (const auto running = running_.find(id); running != running_.end()) {
        inv = running->second;
      } else if (unjournaled_.contains(id)) {
        return false;
      }
    }
    if (inv) return inv->cancel("the invocation was cancelled");
    switch (store_->request_cancel(id)) {
      case cancel_reply::unknown:
        throw std::invalid_argument("durable::invocations::cancel: no invocation '" + id + "'");
      case cancel_reply::finished:
        return false;
      case cancel_reply::cancelled:
      case cancel_reply::requested:
        return true;
    }
    return false;
  }

  [[nodiscard]] std::size_t finished_count() const {
    const std::size_t stored = store_->finished_count();
    std::lock_guard lock(mutex_);
    return stored + unjournaled_.size();
  }

 private:
  static void refuse_other_function(const std::string& id, const std::string& runs, std::string_view asked) {
    if (runs != asked) {
      throw std::invalid_argument("durable::invocations::start: invocation '" + id + "' exists and runs '" + runs +
                                  "', not '" + std::string(asked) + "'");
    }
  }

  // Runs `inv`, which this process holds now.
  void run(const std::shared_ptr<invocation_journal>& inv, make_body make) {
    {
      std::lock_guard lock(mutex_);
      inv->park_sleeps_of(park_after_);
    }
    if (inv->cancel_requested_at_claim()) {
      try {
        static_cast<void>(inv->cancel("the invocation was cancelled"));
      } catch (...) {  // the store failed: the root finds the invocation broken
      }
    }
    const std::string_view name = registered_name(inv->started().function);
    rt_->adopt(invocation_root(shared_from_this(), inv, std::move(make), name));
  }

  // The name of a registered function, with the storage of the registry's key (stable: map
  // nodes do not move).
  std::string_view registered_name(const std::string& name) {
    std::lock_guard lock(mutex_);
    return functions_.find(name)->first;
  }

  // Runs a journaled invocation until it has an outcome. A journal mismatch (the code changed)
  // forgets its recorded progress and starts it again from scratch with its original input.
  // Static, with the registry as a parameter: the coroutine frame holds it alive.
  static root_task invocation_root(std::shared_ptr<invocation_registry> self, std::shared_ptr<invocation_journal> inv,
                                   make_body make, std::string_view name) {
    runtime& rt = *self->rt_;
    // Cooperative: a cancel ends waits at once and starts no further call, but lets a running
    // attempt finish (its step is not abandoned half way, and attempts need not run apart).
    const stop_scope cancelled_by_id{inv->stop_token(), nullptr, false};
    bool journaled = false;  // the outcome is in the store
    for (;;) {
      scope_ref scope(new invocation_scope(*inv, path_view{}, nullptr));
      call_context context{&rt, {}, &cancelled_by_id, scope.get()};
      durable_task<> body;
      std::optional<call_completed_record> unjournaled;  // an outcome the call did not journal
      try {
        body = make(inv->started().arguments);
      } catch (const std::exception& e) {  // the arguments do not decode: nothing can run
        unjournaled = root_failure_record(*inv, status::invalid_argument, failure_reason::fatal_status, e.what());
      }
      bool mismatch = false;
      if (body.valid()) {
        result<void>& out = co_await outcome_awaiter<void, default_policy>{body.handle(), &context};
        if (out.has_fault()) {
          const fault& f = out.get_fault();
          // A cancellation completes [0] itself: then the outcome is known, whatever the code did.
          const bool has_outcome = inv->own_outcome().has_value();
          mismatch = f.final && f.code == status::incompatible_state && !has_outcome;
          if (!mismatch && !has_outcome) unjournaled = root_failure_record(*inv, f.code, f.reason, describe_fault(f));
        }
      }
      if (!mismatch) {
        // The recorded [0] if there is one (the call's own, or a cancel's), else the outcome
        // made here. Without a recorded one, the made-up one needs an outcome of some kind: a
        // call that succeeded has journaled [0], so that is only a failure nothing journaled.
        journaled = inv->settle_outcome(unjournaled ? std::move(*unjournaled)
                                                    : root_failure_record(*inv, status::permanent_error,
                                                                          failure_reason::fatal_status,
                                                                          "the invocation ended without a recorded outcome"));
        break;
      }
      try {
        inv->reset("the code no longer matches the journal");
      } catch (const failure& f) {  // the store failed (journal_failure): the invocation is broken
        journaled = inv->settle_outcome(root_failure_record(*inv, f.code(), f.reason(), f.what()));
        break;
      }
      rt.emit(event_kind::restarted, name, 0, status::incompatible_state);
    }
    self->finish_invocation(inv, journaled);
    rt.forget(co_await root_probe{});
  }

  // The invocation has its outcome: `get` may return. One the store does not hold (the store
  // failed, the arguments did not decode, the runtime stopped it) is kept here, so that
  // `start` of its id returns it in this process, and given back to the store, which runs it
  // again after a restart. Then the store's upkeep (compaction) runs here if it is due.
  void finish_invocation(const std::shared_ptr<invocation_journal>& inv, bool journaled) {
    if (const auto wake = inv->parked_until(); !journaled && wake && !inv->lost_ownership()) {
      // Parked: the store wakes it at `wake` (the sleep is recorded), on whichever worker;
      // a handle here reads its outcome from the store. If the store refuses (another worker
      // took it meanwhile, or it failed), the lease runs out and it is taken over as it is.
      try {
        store_->park(inv->owner(), *wake);
      } catch (...) {
        try {
          store_->release(inv->owner());  // the store failed: ready again, rather than held by nobody
        } catch (...) {
        }
      }
      leave_to_store(inv);
      return;
    }
    if (!journaled && inv->lost_ownership()) {
      // Another worker took it over, or may soon (this one's lease ran out, or is running out):
      // it goes on there. A release under this lease is refused if it was taken already.
      try {
        store_->release(inv->owner());
      } catch (...) {
      }
      leave_to_store(inv);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      running_.erase(inv->id());
      if (!journaled) unjournaled_.insert_or_assign(inv->id(), inv);
    }
    finished_here_.notify_all();
    if (!journaled) {
      // Even when the store failed: a store that can reach its database again hands the
      // invocation back, instead of keeping it this worker's until the worker stops.
      try {
        store_->release(inv->owner());
      } catch (...) {
      }
    }
    rt_->set_done(inv->done);
    if (journaled) housekeeping();
  }

  // The invocation goes on elsewhere (another worker, or the store until it wakes): it no
  // longer runs here, and whoever waits for it here reads its outcome from the store.
  void leave_to_store(const std::shared_ptr<invocation_journal>& inv) {
    inv->follow_store();
    {
      std::lock_guard lock(mutex_);
      running_.erase(inv->id());
    }
    finished_here_.notify_all();
    rt_->set_done(inv->done);
  }

  // The store's upkeep after a finish; never throws (a failure is an event).
  void housekeeping() noexcept {
    try {
      if (const auto done = store_->housekeeping()) {
        rt_->emit_failure(event_kind::journal_compacted, {}, 0, status::ok, std::nullopt, nullptr, *done);
      }
    } catch (const std::exception& e) {
      rt_->emit_failure(event_kind::compaction_failed, {}, 0, status::temporary_error, failure_reason::journal_failed,
                        nullptr, std::string("automatic journal compaction failed (nothing was changed): ") + e.what());
    } catch (...) {
    }
  }

  static call_completed_record root_failure_record(const invocation_journal& inv, status code, failure_reason reason,
                                                   std::string message) {
    call_completed_record r{inv.id(), call_path{0}, inv.started().function};
    r.code = code == status::ok ? status::permanent_error : code;
    r.reason = reason;
    r.attempts = 1;
    r.message = std::move(message);
    return r;
  }

  runtime* rt_;
  invocation_store* store_;
  std::unique_ptr<invocation_store> owned_;  // when built over a journal: the journal_store
  mutable std::mutex mutex_;
  std::condition_variable_any finished_here_;  // an invocation running here ended (for serve)
  std::optional<std::chrono::nanoseconds> park_after_;  // under mutex_: while serving
  std::map<std::string, make_body> functions_;                                // under mutex_
  std::map<std::string, std::shared_ptr<invocation_journal>> running_;        // under mutex_
  std::map<std::string, std::shared_ptr<invocation_journal>> unjournaled_;    // under mutex_
};

}  // namespace detail

/// The journaled invocations of one store, run on one runtime. Declare it after the runtime
/// and the store (it must be destroyed before them); invocations still running when it is
/// destroyed go on running on the runtime until it stops, and touch nothing freed.
class invocations {
 public:
  /// Invocations kept in `store` (a memory_store, a journal_store, a shared database).
  invocations(runtime& rt, invocation_store& store)
      : registry_(std::make_shared<detail::invocation_registry>(rt, store, nullptr)) {}
  /// Invocations kept in the journal `log` (a file_journal, a memory_journal), through a
  /// journal_store of its own with `options`.
  invocations(runtime& rt, journal& log, invocations_options options = {}) : registry_(over_journal(rt, log, options)) {}
  invocations(const invocations&) = delete;
  invocations& operator=(const invocations&) = delete;

  /// Registers a `durable::function` by its name, so that `start` can run it in journaled
  /// invocations and `recover` can find it again after a restart. A name registered twice is an
  /// error (std::invalid_argument). Its parameters and result must have a `durable::codec`
  /// (a compile error names the type that has none).
  template <class Function>
  void register_function(const Function& f) {
    registry_->register_function(f);
  }

  /// Starts a journaled invocation of `f` (registered) with `args`, identified by `id` (an
  /// idempotency key). The invocation and its arguments are durable in the store before any
  /// of its code runs. Starting an id that exists already runs nothing new: it returns a handle
  /// to that invocation (its arguments are ignored; another function is std::invalid_argument);
  /// an unfinished one that nobody runs (before `recover`) is taken and resumed.
  template <class Function, class... A>
  auto start(std::string id, const Function& f, A&&... args) {
    return registry_->start(true, std::move(id), f, std::forward<A>(args)...);
  }

  /// Like `start`, but runs nothing here: a new invocation is left ready in the store for
  /// whichever worker claims it next (`serve`, `claim`, `recover`), and so is an unfinished one
  /// that nobody runs. The handle reads the outcome from the store: `get` waits for it (polling
  /// the store, every 100 ms at most).
  template <class Function, class... A>
  auto submit(std::string id, const Function& f, A&&... args) {
    return registry_->start(false, std::move(id), f, std::forward<A>(args)...);
  }

  /// Takes every unfinished invocation of the store that nobody runs, and resumes it: calls it
  /// recorded as completed return their recorded outcome without running, calls waiting for a
  /// retry go on at their recorded time, the rest runs. Finished invocations stay in the store,
  /// readable through `start` with their id. Register every function first: an unfinished
  /// invocation of a name that is not registered is a std::logic_error (and nothing is
  /// resumed). Records about an invocation the journal never started are skipped, each such id
  /// reported as a `records_skipped` event.
  void recover() { registry_->recover(); }

  /// Takes up to `max` unfinished invocations nobody runs (ready, released, parked and due, or
  /// left by a worker whose lease ran out) and runs them here, as `recover` does; returns how
  /// many it took. An invocation of a function that is not registered is a std::logic_error
  /// (and none is taken).
  std::size_t claim(std::size_t max) { return registry_->claim(max, "claim"); }

  /// Serves a store shared by several worker processes until `stop` is requested: claims ready
  /// invocations while fewer than `options.capacity` run here, runs them on the runtime's
  /// workers (a runtime with none is a std::logic_error), and between claims waits for work.
  /// Returns how many invocations it took; those still running go on (wait for them, or
  /// destroy the store to hand them to another worker). Throws what `claim` throws.
  std::size_t serve(const std::stop_token& stop, serve_options options = {}) { return registry_->serve(stop, options); }

  /// Deletes every finished invocation from the store (a `file_journal` writes a new file and
  /// renames it over the old one: a crash meanwhile loses nothing). A deleted invocation is
  /// forgotten: its id may be started again afterwards. Invocations still running keep their
  /// records, in order. (Automatic compaction, see `invocations_options::compact_after_records`,
  /// condenses instead, and forgets nothing.)
  void compact_journal() { registry_->compact_journal(); }

  /// Cancels the invocation `id`, durably, so that it stays cancelled after a restart. One
  /// running here has its own call journaled as cancelled and its code asked to stop, as a stop
  /// request stops a call (waits end at once; an attempt in a foreign wait is detached); one
  /// nobody runs is finished as cancelled by the store; one another worker runs learns at its
  /// next checkpoint. `get()` then throws a `durable::failure` whose `reason()` is
  /// `failure_reason::cancelled`. False if it had finished already (nothing changes); an id the
  /// store does not know is std::invalid_argument.
  bool cancel(const std::string& id) { return registry_->cancel(id); }

  /// How many finished invocations are known (what `start` of their ids returns).
  [[nodiscard]] std::size_t finished_invocations() const { return registry_->finished_count(); }

  /// The runtime the invocations run on.
  [[nodiscard]] runtime& rt() const noexcept { return registry_->rt(); }
  /// The store they are kept in.
  [[nodiscard]] invocation_store& store() const noexcept { return registry_->store(); }

 private:
  static std::shared_ptr<detail::invocation_registry> over_journal(runtime& rt, journal& log,
                                                                   invocations_options options) {
    auto store = std::make_unique<journal_store>(
        log, journal_store_options{.compact_after_records = options.compact_after_records,
                                   .now = [&rt] { return rt.now(); }});
    invocation_store& view = *store;
    return std::make_shared<detail::invocation_registry>(rt, view, std::move(store));
  }

  std::shared_ptr<detail::invocation_registry> registry_;
};

}  // namespace durable
