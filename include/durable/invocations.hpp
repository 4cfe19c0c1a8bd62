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
// recorded in a `durable::journal` before the code that depends on them goes on. After a crash,
// `recover` runs every unfinished invocation again, and each call the journal saw complete
// returns its recorded outcome without running. This layer sits above the runtime (which only
// schedules) and the calls (which read and write their records through `journal_scope`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "detail/finished_invocations.hpp"
#include "detail/invocation_journal.hpp"
#include "detail/journal_compaction.hpp"
#include "detail/journal_scope.hpp"
#include "error.hpp"
#include "event.hpp"
#include "journal.hpp"
#include "journal_records.hpp"
#include "policy.hpp"
#include "runtime.hpp"
#include "status.hpp"
#include "task.hpp"

namespace durable {

/// How journaled invocations are kept.
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
  [[nodiscard]] bool finished() const { return inv_->outcome().has_value(); }
  /// Cancels it (see `invocations::cancel`). False if it had finished already.
  bool cancel() { return inv_->cancel("the invocation was cancelled"); }
  /// Waits until it has finished (driving the runtime, like `runtime::run`) and returns its
  /// value, or throws its `durable::failure` (whose cause is not kept across a restart).
  T get() {
    rt_->wait_until_done(inv_->done, "durable::invocation::get");
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
/// invocations running and finished, and the compaction schedule. Held by every running
/// invocation too, so that one finishing after its `invocations` object was destroyed (while
/// the runtime still ran it) touches nothing freed.
class invocation_registry : public std::enable_shared_from_this<invocation_registry> {
 public:
  using make_body = std::function<durable_task<>(std::span<const std::byte>)>;

  invocation_registry(runtime& rt, journal& store, invocations_options options)
      : rt_(&rt), journal_(&store), compaction_(options.compact_after_records) {}

  [[nodiscard]] runtime& rt() const noexcept { return *rt_; }
  [[nodiscard]] journal& store() const noexcept { return *journal_; }

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

  template <class Function, class... A>
  auto start(std::string id, const Function& f, A&&... args) {
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
      const auto refuse_other_function = [&](const std::string& runs) {
        if (runs != f.name()) {
          throw std::invalid_argument("durable::invocations::start: invocation '" + id + "' exists and runs '" +
                                      runs + "', not '" + std::string(f.name()) + "'");
        }
      };
      if (const auto existing = running_.find(id); existing != running_.end()) {
        refuse_other_function(existing->second->started().function);
        return invocation<value>(*rt_, existing->second, f.name());
      }
      if (const finished_invocations::entry* done = finished_.find(id)) {
        refuse_other_function(*done->function);
        // A handle of its own, holding just the outcome: nothing more of it is kept.
        auto handle = std::make_shared<invocation_journal>(*journal_, invocation_started_record{id, *done->function, {}});
        handle->set_outcome(finished_invocations::outcome(id, *done));
        handle->done = true;
        return invocation<value>(*rt_, std::move(handle), f.name());
      }
      invocation_started_record started{id, std::string(f.name()), encode(args_tuple(std::forward<A>(args)...))};
      inv = std::make_shared<invocation_journal>(*journal_, std::move(started));
      running_.emplace(id, inv);
      make = found->second;
    }
    try {
      inv->append(journal_record_type::invocation_started, inv->started(), true);  // before any code runs
    } catch (...) {
      std::lock_guard lock(mutex_);
      running_.erase(id);
      throw;
    }
    rt_->adopt(invocation_root(shared_from_this(), inv, std::move(make), f.name()));
    return invocation<value>(*rt_, std::move(inv), f.name());
  }

  void recover() {
    const journal_summary summary = summarize(journal_->records());
    std::vector<std::pair<std::shared_ptr<invocation_journal>, make_body>> resume;
    {
      std::lock_guard lock(mutex_);
      for (const std::string& id : summary.order) {
        const invocation_summary& s = summary.invocations.at(id);
        if (s.state == invocation_state::running && !known_locked(id) && !functions_.contains(s.started.function)) {
          throw std::logic_error("durable::invocations::recover: invocation '" + id + "' runs '" +
                                 s.started.function + "', which is not registered");
        }
      }
      for (const std::string& id : summary.order) {
        if (known_locked(id)) continue;
        const invocation_summary& s = summary.invocations.at(id);
        if (const call_completed_record* outcome = s.outcome()) {
          finished_.add(*outcome, true);
          continue;
        }
        auto inv = std::make_shared<invocation_journal>(*journal_, s.started);
        inv->load(s);
        resume.emplace_back(inv, functions_.at(s.started.function));
        running_.emplace(id, std::move(inv));
      }
    }
    for (const auto& [id, count] : summary.orphan_records) {
      const std::string what = "skipped " + std::to_string(count) + " journal record" + (count == 1 ? "" : "s") +
                               " of invocation '" + id + "', which the journal never started";
      rt_->emit_failure(event_kind::records_skipped, id, 0, status::ok, std::nullopt, nullptr, what);
    }
    for (auto& [inv, make] : resume) {
      const std::string_view name = registered_name(inv->started().function);
      rt_->adopt(invocation_root(shared_from_this(), inv, std::move(make), name));
    }
  }

  void compact_journal() {
    std::lock_guard one_at_a_time(compaction_mutex_);
    std::vector<std::string> finished;
    {
      std::lock_guard lock(mutex_);
      finished = finished_.ids();
    }
    const std::uint64_t kept =
        compact_counting([&finished](const journal_record& r) { return kept_when_forgetting(r, finished); });
    const std::uint64_t last = journal_->last_lsn();
    std::lock_guard lock(mutex_);
    for (const std::string& id : finished) finished_.erase(id);
    compaction_.compacted(last, kept);
  }

  bool cancel(const std::string& id) {
    std::shared_ptr<invocation_journal> inv;
    {
      std::lock_guard lock(mutex_);
      if (const auto running = running_.find(id); running != running_.end()) {
        inv = running->second;
      } else if (finished_.find(id) != nullptr) {
        return false;
      } else {
        throw std::invalid_argument("durable::invocations::cancel: no invocation '" + id +
                                    "' (not started, or not recovered yet: recover() first)");
      }
    }
    return inv->cancel("the invocation was cancelled");
  }

  [[nodiscard]] std::size_t finished_count() const {
    std::lock_guard lock(mutex_);
    return finished_.size();
  }

 private:
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
    const stop_scope cancelled_by_id{inv->stop_token()};
    for (;;) {
      scope_ref scope(new journal_scope(*inv, {}, nullptr));
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
        if (auto done = inv->own_outcome()) {
          inv->set_outcome(std::move(*done));
        } else if (unjournaled) {
          inv->set_outcome(std::move(*unjournaled));
        } else {  // cannot happen: a call that succeeded has journaled [0], or waited for a cancel
          inv->set_outcome(root_failure_record(*inv, status::permanent_error, failure_reason::fatal_status,
                                               "the invocation ended without a recorded outcome"));
        }
        break;
      }
      inv->reset("the code no longer matches the journal");
      rt.emit(event_kind::restarted, name, 0, status::incompatible_state);
    }
    self->finish_invocation(*inv);
    rt.forget(co_await root_probe{});
  }

  // The invocation has its outcome: the registry keeps only that, then `get` may return. Then,
  // if it is due, the automatic compaction runs here.
  void finish_invocation(invocation_journal& inv) {
    const std::uint64_t last = journal_->last_lsn();
    bool compact = false;
    {
      std::lock_guard lock(mutex_);
      finished_.add(*inv.outcome(), !inv.broken());
      running_.erase(inv.id());
      compact = compaction_.due(last);
    }
    rt_->set_done(inv.done);
    if (compact) condense_journal();
  }

  // Condenses the journal (see invocations_options::compact_after_records); never throws.
  void condense_journal() noexcept {
    std::unique_lock one_at_a_time(compaction_mutex_, std::try_to_lock);
    if (!one_at_a_time.owns_lock()) return;  // another thread is compacting
    std::uint64_t kept = 0;
    try {
      std::vector<std::string_view> finished;  // valid while compaction_mutex_ is held
      {
        std::lock_guard lock(mutex_);
        if (!compaction_.due(journal_->last_lsn())) return;  // another thread just did it
        finished = finished_.journaled_ids();
      }
      kept = compact_counting([&finished](const journal_record& r) { return kept_when_condensed(r, finished); });
      const std::uint64_t last = journal_->last_lsn();
      {
        std::lock_guard lock(mutex_);
        compaction_.compacted(last, kept);
      }
      rt_->emit_failure(event_kind::journal_compacted, {}, 0, status::ok, std::nullopt, nullptr,
                        "condensed the journal: " + std::to_string(kept) + " records kept");
    } catch (const std::exception& e) {
      std::uint64_t last = 0;
      try {
        last = journal_->last_lsn();
      } catch (...) {
      }
      {
        std::lock_guard lock(mutex_);
        compaction_.compacted(last, std::max<std::uint64_t>(last, 1));  // try again once it has doubled
      }
      rt_->emit_failure(event_kind::compaction_failed, {}, 0, status::temporary_error, failure_reason::journal_failed,
                        nullptr, std::string("automatic journal compaction failed (nothing was changed): ") + e.what());
    } catch (...) {
    }
  }

  // Compacts the journal with `keep`; returns how many records it kept.
  template <class Keep>
  std::uint64_t compact_counting(Keep keep) {
    std::uint64_t kept = 0;
    journal_->compact([&](const journal_record& r) {
      const bool k = keep(r);
      kept += k ? 1 : 0;
      return k;
    });
    return kept;
  }

  // Whether `id` is a running or a finished invocation (under mutex_).
  [[nodiscard]] bool known_locked(const std::string& id) const {
    return running_.contains(id) || finished_.find(id) != nullptr;
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
  journal* journal_;
  mutable std::mutex mutex_;
  std::map<std::string, make_body> functions_;                              // under mutex_
  std::map<std::string, std::shared_ptr<invocation_journal>> running_;      // under mutex_
  finished_invocations finished_;                                           // under mutex_
  compaction_schedule compaction_;                                          // under mutex_
  std::mutex compaction_mutex_;  // one compaction at a time; taken before mutex_
};

}  // namespace detail

/// The journaled invocations of one journal, run on one runtime. Declare it after the runtime
/// and the journal (it must be destroyed before them); invocations still running when it is
/// destroyed go on running on the runtime until it stops, and touch nothing freed.
class invocations {
 public:
  invocations(runtime& rt, journal& store, invocations_options options = {})
      : registry_(std::make_shared<detail::invocation_registry>(rt, store, options)) {}
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
  /// idempotency key). The invocation and its arguments are durable in the journal before any
  /// of its code runs. Starting an id that exists already runs nothing: it returns a handle to
  /// that invocation (its arguments are ignored; another function is std::invalid_argument).
  template <class Function, class... A>
  auto start(std::string id, const Function& f, A&&... args) {
    return registry_->start(std::move(id), f, std::forward<A>(args)...);
  }

  /// Reads the journal and resumes every invocation that had not finished: calls it recorded
  /// as completed return their recorded outcome without running, calls waiting for a retry go
  /// on at their recorded time, the rest runs. Finished invocations become readable through
  /// `start` with their id. Register every function first: an unfinished invocation of a name
  /// that is not registered is a std::logic_error (and nothing is resumed). Records about an
  /// invocation the journal never started are skipped, each such id reported as a
  /// `records_skipped` event.
  void recover() { registry_->recover(); }

  /// Drops the records of every invocation that has finished, rewriting the journal (a
  /// `file_journal` writes a new file and renames it over the old one: a crash meanwhile loses
  /// nothing). A dropped invocation is forgotten: its id may be started again afterwards.
  /// Records of invocations still running are kept, in order. (Automatic compaction, see
  /// `invocations_options::compact_after_records`, condenses instead, and forgets nothing.)
  void compact_journal() { registry_->compact_journal(); }

  /// Cancels the invocation `id`: its own call is journaled as cancelled (durably, so that it
  /// stays cancelled after a restart) and its running code is asked to stop, as a stop request
  /// stops a call (waits end at once; an attempt in a foreign wait is detached). `get()` then
  /// throws a `durable::failure` whose `reason()` is `failure_reason::cancelled`. False if it
  /// had finished already (nothing changes); an id that is neither running nor finished here
  /// (not started, or not recovered yet) is std::invalid_argument.
  bool cancel(const std::string& id) { return registry_->cancel(id); }

  /// How many finished invocations are known (what `start` of their ids returns).
  [[nodiscard]] std::size_t finished_invocations() const { return registry_->finished_count(); }

  /// The runtime the invocations run on.
  [[nodiscard]] runtime& rt() const noexcept { return registry_->rt(); }

 private:
  std::shared_ptr<detail::invocation_registry> registry_;
};

}  // namespace durable
