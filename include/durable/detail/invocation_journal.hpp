// durable/detail/invocation_journal.hpp — one journaled invocation's state while it runs: what
// was recorded before this process took it (to replay), new records written to its store under
// its lease, and its outcome once it has one.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "../codec.hpp"
#include "../error.hpp"
#include "../invocation_store.hpp"
#include "../journal.hpp"
#include "../journal_records.hpp"
#include "../status.hpp"
#include "hash_index.hpp"
#include "invocation_scope.hpp"

namespace durable::detail {

/// One invocation's journal state: what was recorded before this process took it (to replay),
/// the lease it writes under, and its outcome once it has one. Shared by the invocation's calls
/// on every thread.
class invocation_journal final : public invocation_progress {
 public:
  invocation_journal(invocation_store& store, invocation_started_record started)
      : store_(&store), started_(std::move(started)) {}

  /// Set (under the runtime's lock) when the invocation has finished: what `invocation::get`
  /// waits for, as `run` waits for its task.
  bool done = false;

  [[nodiscard]] const std::string& id() const noexcept override { return started_.id; }
  [[nodiscard]] const invocation_started_record& started() const noexcept { return started_; }
  [[nodiscard]] invocation_store& store() const noexcept { return *store_; }
  [[nodiscard]] const lease& owner() const noexcept { return lease_; }

  /// Takes the invocation as its store handed it out: its lease, its recorded arguments and
  /// what its records say it did (replayed as it runs). Before any of its code runs.
  void take(claimed_invocation claimed) {
    std::vector<journal_record> records;
    records.reserve(claimed.records.size() + 1);
    records.push_back(std::move(claimed.started));
    for (journal_record& r : claimed.records) records.push_back(std::move(r));
    journal_summary summary = summarize(records);
    invocation_summary& mine = summary.invocations.at(claimed.owner.invocation);
    std::lock_guard lock(mutex_);
    lease_ = std::move(claimed.owner);
    cancel_requested_at_claim_ = claimed.cancel_requested;
    started_ = std::move(mine.started);
    completed_ = {mine.completed.begin(), mine.completed.end()};
    waits_ = {mine.waits.begin(), mine.waits.end()};
    has_recorded_.store(!completed_.empty(), std::memory_order_release);
    has_waits_.store(!waits_.empty(), std::memory_order_release);
  }

  /// True if a cancel was requested before this process took the invocation.
  [[nodiscard]] bool cancel_requested_at_claim() const {
    std::lock_guard lock(mutex_);
    return cancel_requested_at_claim_;
  }

  /// Makes this a handle to an invocation this process does not run: finished (`outcome` is
  /// its stored outcome record), or run by another worker (its outcome is read from the store
  /// when asked for). `done` is set either way: nothing here will set it later.
  void watch_elsewhere(const std::optional<journal_record>& outcome) {
    if (outcome) {
      set_outcome(decode<call_completed_record>(outcome->payload));
    } else {
      std::lock_guard lock(mutex_);
      elsewhere_ = true;
    }
  }

  /// For a handle to an invocation run by another worker: waits until the store holds its
  /// outcome, asking it with growing pauses (1 ms to 100 ms). Throws std::logic_error if the
  /// store forgets the invocation meanwhile.
  void wait_for_stored_outcome() {
    std::chrono::milliseconds pause{1};
    while (!refresh()) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds{100});
    }
  }

  /// True once the outcome is known; for a handle to an invocation run elsewhere, asks the
  /// store first.
  bool refresh() {
    {
      std::lock_guard lock(mutex_);
      if (outcome_) return true;
      if (!elsewhere_) return false;
    }
    const std::optional<invocation_view> view = store_->read(started_.id);
    if (!view)
      throw std::logic_error("durable::invocation: the store no longer holds invocation '" + started_.id + "'");
    if (view->state != stored_state::finished || !view->outcome) return false;
    set_outcome(decode<call_completed_record>(view->outcome->payload));
    return true;
  }

  /// The recorded completion of the call at `path`, if any.
  [[nodiscard]] std::optional<call_completed_record> completed(path_view path, bool this_run_too) const override {
    // The common case, a call of a fresh invocation that is not retrying: nothing to look up.
    if (!has_recorded_.load(std::memory_order_acquire) && !this_run_too) return std::nullopt;
    std::vector<std::uint64_t> candidates;
    {
      std::lock_guard lock(mutex_);
      if (const auto it = completed_.find(path); it != completed_.end()) return it->second;
      if (!this_run_too) return std::nullopt;
      fresh_index_.find(hash_index::hash_of_numbers(path), [&](std::uint64_t seq) {
        candidates.push_back(seq);
        return false;
      });
    }
    for (const std::uint64_t seq : candidates) {  // read back from the store, outside the lock
      journal_record stored;
      try {
        stored = store_->record(lease_, seq);
      } catch (const std::exception& e) {
        throw journal_failure(1, {}, std::current_exception(),
                              "the journal could not read back a completion of invocation '" + started_.id + "': " + e.what());
      }
      call_completed_record r = decode<call_completed_record>(stored.payload);
      if (std::equal(r.path.begin(), r.path.end(), path.begin(), path.end())) return r;
    }
    return std::nullopt;
  }
  /// The recorded wait of the call or sleep at `path`, if any (and if not completed since).
  [[nodiscard]] std::optional<wait_scheduled_record> wait(path_view path) const override {
    if (!has_waits_.load(std::memory_order_acquire)) return std::nullopt;  // the common case: nothing recorded
    std::lock_guard lock(mutex_);
    const auto it = waits_.find(path);
    if (it == waits_.end()) return std::nullopt;
    return it->second;
  }

  /// Appends a record of `type` and, if `durable`, waits until it is on stable storage (as the
  /// store defines it); `finishing` makes it the invocation's outcome. If the store fails (it
  /// throws; `ownership_lost` too), the invocation is broken: this and every later append throw
  /// `journal_failure`, and nothing more is written for it. A checkpoint that tells of a cancel
  /// requested elsewhere cancels the invocation.
  template <class Record>
  void append(journal_record_type type, const Record& record, bool durable, bool finishing = false) {
    append_bytes(type, encode(record), durable, finishing);
  }

  /// `append` of a record already encoded.
  /// Returns the record's seq (0 when finishing).
  std::uint64_t append_bytes(journal_record_type type, std::span<const std::byte> bytes, bool durable,
                             bool finishing = false) {
    if (broken_.load(std::memory_order_acquire)) throw broken_failure();
    bool cancel_requested = false;
    std::uint64_t seq = 0;
    try {
      if (finishing) {
        store_->finish(lease_, static_cast<std::uint8_t>(type), bytes);
      } else if (durable) {
        const checkpoint_reply reply = store_->checkpoint(lease_, static_cast<std::uint8_t>(type), bytes);
        cancel_requested = reply.cancel_requested;
        seq = reply.seq;
      } else {
        seq = store_->append(lease_, static_cast<std::uint8_t>(type), bytes);
      }
    } catch (...) {
      std::string why = "the journal could not record the progress of invocation '" + started_.id + "'";
      bool lost = false;
      try {
        throw;
      } catch (const ownership_lost& e) {
        lost = true;
        why += ": ";
        why += e.what();
      } catch (const std::exception& e) {
        why += ": ";
        why += e.what();
      } catch (...) {
      }
      {
        std::lock_guard lock(mutex_);
        if (broken_why_.empty()) broken_why_ = why;
        lost_ = lost_ || lost;
      }
      broken_.store(true, std::memory_order_release);
      throw journal_failure(1, {}, std::current_exception(), why);
    }
    if (cancel_requested) {
      try {
        static_cast<void>(cancel("the invocation was cancelled"));
      } catch (...) {  // the store failed: the invocation is broken, and its next write says so
      }
    }
    return seq;
  }

  void record_wait(const wait_scheduled_record& wait) override {
    append(journal_record_type::wait_scheduled, wait, false);
  }

  /// Parks sleeps of at least `after` (set while the invocations layer serves its store);
  /// nullopt: none.
  void park_sleeps_of(std::optional<std::chrono::nanoseconds> after) {
    std::lock_guard lock(mutex_);
    park_after_ = after;
  }

  // The run ends without another write: the store is told by the invocations layer
  // (`parked_until`), which then parks the invocation instead of finishing it.
  bool park_until(time_point wake, time_point now) override {
    std::lock_guard lock(mutex_);
    if (!park_after_ || wake - now < *park_after_ || broken_.load(std::memory_order_acquire)) return false;
    parked_until_ = wake;
    if (broken_why_.empty()) broken_why_ = "invocation '" + started_.id + "' is parked until its sleep ends";
    broken_.store(true, std::memory_order_release);
    return true;
  }

  // A step must not start after another worker may have taken the invocation over: the store
  // says when its hold may be running out, and the invocation is then handed back (as if
  // another worker had taken it: its outcome is the store's to tell).
  void before_attempt() override {
    if (broken_.load(std::memory_order_acquire)) throw broken_failure();
    if (store_->may_run_steps()) return;
    {
      std::lock_guard lock(mutex_);
      if (broken_why_.empty())
        broken_why_ = "the worker's hold on invocation '" + started_.id + "' may be running out (its lease was not renewed in time)";
      lost_ = true;
    }
    broken_.store(true, std::memory_order_release);
    throw broken_failure();
  }

  /// When the run ended to park the invocation: the time its sleep ends.
  [[nodiscard]] std::optional<time_point> parked_until() const {
    std::lock_guard lock(mutex_);
    return parked_until_;
  }

  /// True once a write to the journal failed: nothing more is written for this invocation.
  [[nodiscard]] bool broken() const noexcept { return broken_.load(std::memory_order_acquire); }
  /// True if that write was refused because another worker holds the invocation now
  /// (ownership_lost): its outcome is the store's to tell, not this process's.
  [[nodiscard]] bool lost_ownership() const {
    std::lock_guard lock(mutex_);
    return lost_;
  }

  /// Forgets the outcome this process made up, and reads it from the store when asked: another
  /// worker runs the invocation now.
  void follow_store() {
    std::lock_guard lock(mutex_);
    outcome_.reset();
    elsewhere_ = true;
  }

  /// Journals a call's completion (durably: its caller resumes after this) and remembers it.
  /// The invocation's own call ([0]) is completed once: by the call, or by `cancel`, whichever
  /// claims it first. The other writes nothing and waits until the winner's record is durable,
  /// so nobody sees an outcome the journal might lose.
  void complete(path_view path, std::span<const std::byte> record) override {
    if (path.size() == 1 && path[0] == 0) {  // the invocation's own call
      if (!claim_outcome()) {
        static_cast<void>(own_outcome());  // waits for the winner
        return;
      }
      settle_on_exit settle{this};
      append_bytes(journal_record_type::call_completed, record, true, true);
      settle.record = decode<call_completed_record>(record);
      return;
    }
    const std::uint64_t seq = append_bytes(journal_record_type::call_completed, record, true);
    // Found again in this run too: a parent that retries calls its children again at the same
    // paths, and a child that completed returns its outcome without running, as after a
    // restart. The store keeps the record; a flat index of path hashes says which seq it is.
    std::lock_guard lock(mutex_);
    fresh_index_.insert(hash_index::hash_of_numbers(path), seq);
  }

  /// Cancels the invocation, if its own call has not completed yet: journals that call as
  /// cancelled (durably: after a restart it stays cancelled), then asks the running code to stop.
  /// False if it had completed already. A journal failure is thrown, and cancels nothing.
  bool cancel(std::string_view why) {
    if (!claim_outcome()) return false;
    call_completed_record cancelled = cancelled_outcome(started_.id, started_.function, std::string(why));
    {
      settle_on_exit settle{this};
      append(journal_record_type::call_completed, cancelled, true, true);
      settle.record = std::move(cancelled);
    }
    stop_.request_stop();
    return true;
  }

  /// The recorded completion of the invocation's own call ([0]), once a write of it in flight
  /// (by the call or by `cancel`) has ended.
  [[nodiscard]] std::optional<call_completed_record> own_outcome() const {
    std::unique_lock lock(mutex_);
    settled_.wait(lock, [this] { return !outcome_pending_; });
    const auto it = completed_.find(call_path{0});
    if (it == completed_.end()) return std::nullopt;
    return it->second;
  }

  /// Gives the invocation its outcome: the recorded completion of its own call if there is one
  /// (once a write of it in flight has ended), else `unjournaled`, which then also keeps a
  /// cancel from claiming [0] afterwards (so the store and this process agree). True if the
  /// recorded one was taken.
  bool settle_outcome(call_completed_record unjournaled) {
    std::optional<call_completed_record> recorded;
    {
      std::unique_lock lock(mutex_);
      settled_.wait(lock, [this] { return !outcome_pending_; });
      if (const auto it = completed_.find(call_path{0}); it != completed_.end()) {
        recorded = it->second;
      } else {
        outcome_claimed_ = true;  // a cancel from now on finds the invocation ended
      }
    }
    set_outcome(recorded ? std::move(*recorded) : std::move(unjournaled));
    return recorded.has_value();
  }

  /// What stops the invocation's code when it is cancelled.
  [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_.get_token(); }

  /// Forgets the recorded progress (incompatible_state): journaled first, then in memory.
  void reset(std::string_view why) {
    append(journal_record_type::invocation_reset, invocation_reset_record{started_.id, std::string(why)}, true);
    std::lock_guard lock(mutex_);
    completed_.clear();
    waits_.clear();
    has_recorded_.store(false, std::memory_order_release);
    has_waits_.store(false, std::memory_order_release);
    fresh_index_.clear();
  }

  /// Sets the invocation's outcome: the completion of its own call, or a failure made at its
  /// root.
  void set_outcome(call_completed_record outcome) {
    std::lock_guard lock(mutex_);
    outcome_ = std::move(outcome);
    // A finished invocation is only looked up for its outcome (an idempotent `start`, `get`):
    // what was recorded on the way there, and its arguments, are dropped now rather than kept
    // until the next compaction (215 MB per 100,000 invocations of a few calls each, before).
    completed_ = {};
    waits_ = {};
    has_recorded_.store(false, std::memory_order_release);
    has_waits_.store(false, std::memory_order_release);
    fresh_index_.clear();
    std::vector<std::byte>().swap(started_.arguments);
  }
  [[nodiscard]] std::optional<call_completed_record> outcome() const {
    std::lock_guard lock(mutex_);
    return outcome_;
  }

 private:
  [[nodiscard]] journal_failure broken_failure() const {
    std::lock_guard lock(mutex_);
    return journal_failure(1, {}, nullptr, broken_why_ + " (nothing more is written for it)");
  }

  // True for the first caller: the one whose completion of [0] goes to the journal.
  bool claim_outcome() {
    std::lock_guard lock(mutex_);
    if (outcome_claimed_ || outcome_ || completed_.contains(call_path{0})) return false;
    outcome_claimed_ = true;
    outcome_pending_ = true;
    return true;
  }

  // Ends a claimed write of [0]: with its record once it is durable, or (the append threw)
  // with none, giving the claim back. Wakes whoever waits in `own_outcome`.
  struct settle_on_exit {
    invocation_journal* self;
    std::optional<call_completed_record> record{};
    ~settle_on_exit() {
      {
        std::lock_guard lock(self->mutex_);
        if (record) {
          self->completed_[call_path{0}] = std::move(*record);
        } else {
          self->outcome_claimed_ = false;
        }
        self->outcome_pending_ = false;
      }
      self->settled_.notify_all();
    }
  };

  invocation_store* store_;
  lease lease_;  // set by `take`, before the invocation's code runs
  invocation_started_record started_;
  std::stop_source stop_;
  bool cancel_requested_at_claim_ = false;  // under mutex_
  bool elsewhere_ = false;                  // under mutex_: another worker runs it
  bool lost_ = false;                       // under mutex_: a write found it held by another worker
  std::optional<std::chrono::nanoseconds> park_after_;  // under mutex_
  std::optional<time_point> parked_until_;              // under mutex_
  bool outcome_claimed_ = false;  // under mutex_
  bool outcome_pending_ = false;  // under mutex_: a claimed write of [0] is in flight
  mutable std::condition_variable settled_;
  std::atomic<bool> broken_{false};
  mutable std::mutex mutex_;
  std::string broken_why_;  // under mutex_
  // Under mutex_: what the store held when this process took the invocation (and [0]), ...
  std::map<call_path, call_completed_record, path_less> completed_;
  std::map<call_path, wait_scheduled_record, path_less> waits_;
  std::atomic<bool> has_recorded_{false};  // completed_ held records when taken, read without the lock
  std::atomic<bool> has_waits_{false};     // !waits_.empty(), read without the lock
  // ... and the seqs of the completions recorded since, by a hash of their path.
  hash_index fresh_index_;
  std::optional<call_completed_record> outcome_;
};

}  // namespace durable::detail
