// durable/detail/invocation.hpp — the journaled side of an invocation while it runs.
//
// An invocation started with `runtime::start` runs with a `journal_scope` in its contexts. A
// scope says where the running code is in the invocation (its call path) and counts the calls
// and sleeps made from there, which gives each of them its deterministic path. A call looks its
// path up in what the journal recorded before a restart (`invocation_journal`): a completed
// call returns the recorded outcome without running; a call that was waiting for a retry goes
// on from its recorded attempt at its recorded time; anything else runs and is journaled.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../codec.hpp"
#include "../error.hpp"
#include "../journal.hpp"
#include "../journal_records.hpp"
#include "../status.hpp"

namespace durable::detail {

/// One invocation's journal state: what was recorded before this process started (to replay),
/// and its outcome once it has one. Shared by the invocation's calls on every thread.
class invocation_journal {
 public:
  invocation_journal(journal& j, invocation_started_record started) : journal_(&j), started_(std::move(started)) {}

  /// Set (under the runtime's lock) when the invocation has finished: what `invocation::get`
  /// waits for, as `run` waits for its task.
  bool done = false;

  [[nodiscard]] const std::string& id() const noexcept { return started_.id; }
  [[nodiscard]] const invocation_started_record& started() const noexcept { return started_; }
  [[nodiscard]] journal& store() const noexcept { return *journal_; }

  /// Loads what the journal recorded for this invocation (at recovery). Of a finished one only
  /// the outcome is kept (see `set_outcome`).
  void load(const invocation_summary& summary) {
    if (const call_completed_record* finished = summary.outcome()) {
      set_outcome(*finished);
      return;
    }
    std::lock_guard lock(mutex_);
    completed_ = summary.completed;
    waits_ = summary.waits;
  }

  /// The recorded completion of the call at `path`, if any.
  [[nodiscard]] std::optional<call_completed_record> completed(const call_path& path) const {
    std::lock_guard lock(mutex_);
    const auto it = completed_.find(path);
    if (it == completed_.end()) return std::nullopt;
    return it->second;
  }
  /// The recorded wait of the call or sleep at `path`, if any (and if not completed since).
  [[nodiscard]] std::optional<wait_scheduled_record> wait(const call_path& path) const {
    std::lock_guard lock(mutex_);
    const auto it = waits_.find(path);
    if (it == waits_.end()) return std::nullopt;
    return it->second;
  }

  /// Appends a record of `type` and, if `durable`, waits until it is on stable storage (as the
  /// journal's sync mode defines it). If the store fails (it throws), the invocation is broken:
  /// this and every later append throw `journal_failure`, and nothing more is written for it.
  template <class Record>
  void append(journal_record_type type, const Record& record, bool durable) {
    if (broken_.load(std::memory_order_acquire)) throw broken_failure();
    const std::vector<std::byte> bytes = encode(record);
    try {
      const std::uint64_t lsn = journal_->append(static_cast<std::uint8_t>(type), bytes);
      if (durable) journal_->make_durable(lsn);
    } catch (...) {
      std::string why = "the journal could not record the progress of invocation '" + started_.id + "'";
      try {
        throw;
      } catch (const std::exception& e) {
        why += ": ";
        why += e.what();
      } catch (...) {
      }
      {
        std::lock_guard lock(mutex_);
        if (broken_why_.empty()) broken_why_ = why;
      }
      broken_.store(true, std::memory_order_release);
      throw journal_failure(1, {}, std::current_exception(), why);
    }
  }

  /// True once a write to the journal failed: nothing more is written for this invocation.
  [[nodiscard]] bool broken() const noexcept { return broken_.load(std::memory_order_acquire); }

  /// Journals a call's completion (durably: its caller resumes after this) and remembers it.
  void complete(call_completed_record record) {
    append(journal_record_type::call_completed, record, true);
    std::lock_guard lock(mutex_);
    completed_[record.path] = std::move(record);
  }

  /// Forgets the recorded progress (incompatible_state): journaled first, then in memory.
  void reset(std::string_view why) {
    append(journal_record_type::invocation_reset, invocation_reset_record{started_.id, std::string(why)}, true);
    std::lock_guard lock(mutex_);
    completed_.clear();
    waits_.clear();
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

  journal* journal_;
  invocation_started_record started_;
  std::atomic<bool> broken_{false};
  mutable std::mutex mutex_;
  std::string broken_why_;  // under mutex_
  std::map<call_path, call_completed_record> completed_;
  std::map<call_path, wait_scheduled_record> waits_;
  std::optional<call_completed_record> outcome_;
};

/// Where running code is in a journaled invocation. Reference-counted: a call, its attempt
/// running in the background and a fan-out's children may all hold one.
class journal_scope {
 public:
  /// A scope at `path`, inside `parent` (null for the invocation's root), which it keeps alive.
  journal_scope(invocation_journal& inv, call_path path, journal_scope* parent) noexcept
      : inv_(&inv), path_(std::move(path)), parent_(parent) {
    if (parent_ != nullptr) parent_->retain();
  }
  journal_scope(const journal_scope&) = delete;
  journal_scope& operator=(const journal_scope&) = delete;
  ~journal_scope() {
    if (parent_ != nullptr) parent_->release();
  }

  [[nodiscard]] invocation_journal& invocation() const noexcept { return *inv_; }
  [[nodiscard]] const call_path& path() const noexcept { return path_; }

  /// The path of the next call or sleep made from here.
  [[nodiscard]] call_path next_child() {
    call_path child = path_;
    child.push_back(next_.fetch_add(1, std::memory_order_relaxed));
    return child;
  }

  /// A call walked away from the attempt this scope belongs to: the attempt goes on in the
  /// background, but may no longer write to the journal.
  void abandon() noexcept { abandoned_.store(true, std::memory_order_release); }
  /// True if this scope or one it is inside was abandoned: nothing here may be journaled.
  [[nodiscard]] bool abandoned() const noexcept {
    for (const journal_scope* s = this; s != nullptr; s = s->parent_)
      if (s->abandoned_.load(std::memory_order_acquire)) return true;
    return false;
  }

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  invocation_journal* inv_;
  call_path path_;
  journal_scope* parent_;
  std::atomic<std::uint32_t> next_{0};
  std::atomic<bool> abandoned_{false};
  std::atomic<int> refs_{1};
};

/// Owns one reference to a journal_scope.
class scope_ref {
 public:
  scope_ref() noexcept = default;
  explicit scope_ref(journal_scope* adopted) noexcept : scope_(adopted) {}
  scope_ref(const scope_ref& other) noexcept : scope_(other.scope_) {
    if (scope_ != nullptr) scope_->retain();
  }
  scope_ref(scope_ref&& other) noexcept : scope_(std::exchange(other.scope_, nullptr)) {}
  scope_ref& operator=(scope_ref other) noexcept {
    std::swap(scope_, other.scope_);
    return *this;
  }
  ~scope_ref() {
    if (scope_ != nullptr) scope_->release();
  }
  [[nodiscard]] journal_scope* get() const noexcept { return scope_; }
  journal_scope* operator->() const noexcept { return scope_; }
  explicit operator bool() const noexcept { return scope_ != nullptr; }

 private:
  journal_scope* scope_ = nullptr;
};

/// The durable::failure a journaled failed completion stands for, with the same code, reason,
/// attempts, name and what() as the one that was journaled. The record keeps that failure's
/// what(), whose "<name> failed with ..." prefix the failure's constructor adds again: it is
/// taken off the recorded message first, so that what() is not doubled after a replay.
[[nodiscard]] inline failure recorded_failure(const call_completed_record& done, std::string_view name) {
  const failure bare(done.code, done.reason, done.attempts, name, nullptr);
  const std::string_view prefix = bare.what();
  std::string_view rest = done.message;
  if (rest == prefix) {
    rest = {};
  } else if (rest.starts_with(prefix) && rest.substr(prefix.size()).starts_with(": ")) {
    rest.remove_prefix(prefix.size() + 2);
  }
  return failure(done.code, done.reason, done.attempts, name, nullptr, rest);
}

/// The failure that tells the invocation's root that the code no longer matches the journal.
/// Final, so that no call on the way up retries it; the root forgets the recorded progress and
/// starts the invocation again from scratch.
[[nodiscard]] inline failure journal_mismatch(const call_path& path, std::string_view expected, std::string_view found) {
  std::string where;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i != 0) where += '.';
    where += std::to_string(path[i]);
  }
  return failure(status::incompatible_state, failure_reason::fatal_status, 1, {}, nullptr,
                 "the code no longer matches the journal at call " + where + ": it recorded " +
                     std::string(expected) + ", the code now does " + std::string(found));
}

}  // namespace durable::detail
