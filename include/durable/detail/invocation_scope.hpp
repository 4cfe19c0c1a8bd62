// durable/detail/invocation_scope.hpp — the journal_scope of a journaled invocation: call paths
// and the records calls and sleeps read and write.
//
// An invocation started with `invocations::start` runs with an `invocation_scope` at path []
// in its contexts. A scope says where the running code is in the invocation (its call path) and
// counts the calls, sleeps and fan-outs made from there, which gives each of them its
// deterministic path. A call looks its path up in what was recorded before a restart
// (`invocation_progress`): a completed call returns the recorded outcome without running; a call
// that was waiting for a retry goes on from its recorded attempt at its recorded time; anything
// else runs and is recorded.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../codec.hpp"
#include "../error.hpp"
#include "../status.hpp"
#include "call_records.hpp"
#include "frame_pool.hpp"
#include "journal_scope.hpp"

namespace durable::detail {

/// What the calls and sleeps of one journaled invocation read and write: its recorded
/// progress, and new records. The invocation layer implements it over a store
/// (invocation_journal.hpp). Thread-safe.
class invocation_progress {
 public:
  [[nodiscard]] virtual const std::string& id() const noexcept = 0;
  /// The recorded completion of the call at `path`, if any: one the store held when this run
  /// took the invocation, or, if `this_run_too`, one recorded in this run (a call made again
  /// because an enclosing call retried).
  [[nodiscard]] virtual std::optional<call_completed_record> completed(path_view path, bool this_run_too) const = 0;
  /// The recorded wait of the call or sleep at `path`, if any (and if not completed since).
  [[nodiscard]] virtual std::optional<wait_scheduled_record> wait(path_view path) const = 0;
  /// Records a retry wait or a sleep, not durably (lost in a crash, the wait just starts over).
  virtual void record_wait(const wait_scheduled_record& wait) = 0;
  /// Records the completion of the call at `path`, durably (its caller resumes after this),
  /// and remembers it; `record` is its encoded call_completed_record.
  virtual void complete(path_view path, std::span<const std::byte> record) = 0;
  /// A sleep of the invocation's body (nothing else of it runs) until `wake`, recorded: true if
  /// the invocation is to be parked instead (its store wakes it then, on whichever worker),
  /// and then nothing more is written for it here and the sleep ends the run.
  virtual bool park_until(time_point wake, time_point now) { return static_cast<void>(wake), static_cast<void>(now), false; }
  /// Called before each attempt of a call starts: throws a journal_failure if no further step
  /// of the invocation may run here (it is broken, or its worker's hold may be running out).
  virtual void before_attempt() {}

 protected:
  ~invocation_progress() = default;
};

/// A call path kept inline up to a depth of 6 (deeper ones on the heap): a journaled call's
/// scope holds one, and takes no allocation for it.
class path_buffer {
 public:
  path_buffer() noexcept = default;
  explicit path_buffer(path_view path) { assign(path, std::nullopt); }
  /// `parent` followed by `last`.
  path_buffer(path_view parent, std::uint32_t last) { assign(parent, last); }
  path_buffer(const path_buffer&) = delete;
  path_buffer& operator=(const path_buffer&) = delete;

  [[nodiscard]] path_view view() const noexcept {
    return heap_.empty() ? path_view(inline_.data(), size_) : view_of(heap_);
  }

 private:
  static constexpr std::size_t inline_depth = 6;
  void assign(path_view head, std::optional<std::uint32_t> last) {
    const std::size_t n = head.size() + (last ? 1 : 0);
    if (n <= inline_depth) {
      std::copy(head.begin(), head.end(), inline_.begin());
      if (last) inline_[head.size()] = *last;
      size_ = static_cast<std::uint32_t>(n);
    } else {
      heap_.reserve(n);
      heap_.assign(head.begin(), head.end());
      if (last) heap_.push_back(*last);
    }
  }
  std::array<std::uint32_t, inline_depth> inline_{};
  std::uint32_t size_ = 0;
  std::vector<std::uint32_t> heap_;
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
[[nodiscard]] inline failure journal_mismatch(path_view path, std::string_view expected, std::string_view found) {
  std::string where;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i != 0) where += '.';
    where += std::to_string(path[i]);
  }
  return failure(status::incompatible_state, failure_reason::fatal_status, 1, {}, nullptr,
                 "the code no longer matches the journal at call " + where + ": it recorded " +
                     std::string(expected) + ", the code now does " + std::string(found));
}

/// The journal_scope of a journaled invocation, at one call path, over its recorded progress.
class invocation_scope final : public journal_scope {
 public:
  /// A scope at `path`, inside `parent` (null for the invocation's root), which it keeps alive.
  invocation_scope(invocation_progress& inv, path_view path, invocation_scope* parent)
      : inv_(&inv), own_path_(path), path_(own_path_.view()), parent_(parent),
        may_replay_(parent != nullptr && parent->may_replay_) {
    if (parent_ != nullptr) parent_->retain();
  }
  // Two scopes per journaled call: recycled as coroutine frames are (frame_pool.hpp).
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }

  /// The recorded progress this scope reads and writes.
  [[nodiscard]] invocation_progress& invocation() const noexcept { return *inv_; }
  /// Where this scope is in its invocation: [] for the root, [0] for the invocation's own call.
  [[nodiscard]] path_view path() const noexcept { return path_; }
  /// True if calls made here may have completed earlier in this run: some enclosing call is on
  /// a retry, so its code runs again (calls it made before return their recorded outcome).
  [[nodiscard]] bool may_replay() const noexcept { return may_replay_; }
  [[nodiscard]] bool abandoned() const noexcept override {
    for (const invocation_scope* s = this; s != nullptr; s = s->parent_)
      if (s->abandoned_.load(std::memory_order_acquire)) return true;
    return false;
  }

  journal_scope* enter() override { return new invocation_scope(next_child_of, *this); }
  journal_scope* child(std::size_t index) override {
    return new invocation_scope(*inv_, path_buffer(path_, static_cast<std::uint32_t>(index)), this);
  }

  journal_scope* begin_attempt(std::uint32_t attempt_number) override {
    inv_->before_attempt();
    if (current_attempt_ != nullptr) {
      current_attempt_->abandon();
      end_attempt();
    }
    current_attempt_ = new invocation_scope(same_path, *this, attempt_number > 1);
    return current_attempt_;
  }
  void end_attempt() noexcept override {
    if (current_attempt_ != nullptr) std::exchange(current_attempt_, nullptr)->release();
  }
  // Release: an attempt running on another thread that reads abandoned() (acquire) also sees
  // what the call did before walking away.
  void abandon() noexcept override { abandoned_.store(true, std::memory_order_release); }

  bool completed(std::string_view name) const override {
    if (const auto done = inv_->completed(path_, may_replay_)) {
      if (done->function != name) {
        throw journal_mismatch(path_, "a call of '" + done->function + "'", "a call of '" + std::string(name) + "'");
      }
      return true;
    }
    if (const auto wait = inv_->wait(path_); wait && wait->kind != wait_kind::retry) {
      throw journal_mismatch(path_, "a sleep", "a call of '" + std::string(name) + "'");
    }
    return false;
  }

  std::vector<std::byte> recorded_value(std::string_view name) const override {
    call_completed_record done = *inv_->completed(path_, may_replay_);
    if (done.code != status::ok) throw recorded_failure(done, name);
    return std::move(done.value);
  }

  recorded_retry_wait retry_wait() const override {
    const auto wait = inv_->wait(path_);
    if (!wait || wait->kind != wait_kind::retry) return {};
    return {wait->attempt, wait->last, wait->wake_at(), wait->first_attempt_ns};
  }

  void waiting(std::uint32_t attempt, status last, time_point wake_at,
               std::optional<std::int64_t> first_attempt_ns) override {
    if (abandoned()) return;
    inv_->record_wait(wait_scheduled_record{inv_->id(), {path_.begin(), path_.end()}, wait_kind::retry, attempt, last,
                                            wake_at.time_since_epoch().count(), first_attempt_ns});
  }

  void succeeded(std::string_view name, std::uint32_t attempts, std::span<const std::byte> value) override {
    if (abandoned()) return;
    // Encoded into a buffer this thread reuses, straight from the call's fields: no allocation,
    // no copies of its parts.
    thread_local byte_writer record;
    record.clear();
    write_call_completed(record, inv_->id(), path_, name, status::ok, failure_reason::fatal_status, attempts, {}, value);
    inv_->complete(path_, record.bytes());
  }

  void failed(const failure& f) override {
    if (abandoned() || f.reason() == failure_reason::cancelled || f.reason() == failure_reason::journal_failed ||
        f.code() == status::incompatible_state)
      return;
    byte_writer record;
    write_call_completed(record, inv_->id(), path_, f.function_name(), f.code(), f.reason(), f.attempts(), f.what(), {});
    inv_->complete(path_, record.bytes());  // a span from a vector: this header is not in durable.hpp
  }

  // A sleep has a path like a call: its first run records its wake-up time, and after a
  // restart it ends at that time, not after a fresh interval.
  time_point journaled_wake(time_point wake) override {
    const path_buffer child(path_, take_position());
    const path_view path = child.view();
    if (const auto done = inv_->completed(path, may_replay_)) {
      throw journal_mismatch(path, "a call of '" + done->function + "'", "a sleep");
    }
    if (const auto recorded = inv_->wait(path)) {
      if (recorded->kind != wait_kind::sleep) throw journal_mismatch(path, "a retry wait", "a sleep");
      return recorded->wake_at();
    }
    if (!abandoned()) {
      inv_->record_wait(
          wait_scheduled_record{inv_->id(), {path.begin(), path.end()}, wait_kind::sleep, 0, status::ok,
                                wake.time_since_epoch().count()});
    }
    return wake;
  }

  // Only the body's own sleeps (made from path [0]: nothing else of the invocation runs) park.
  bool park_until(time_point wake, time_point now) override {
    return path_.size() == 1 && path_[0] == 0 && !abandoned() && inv_->park_until(wake, now);
  }

 private:
  struct next_child_t {};
  static constexpr next_child_t next_child_of{};
  // The scope of the next call made from `parent`.
  invocation_scope(next_child_t, invocation_scope& parent)
      : inv_(parent.inv_),
        own_path_(parent.path_, parent.take_position()),
        path_(own_path_.view()),
        parent_(&parent),
        may_replay_(parent.may_replay_) {
    parent_->retain();
  }
  struct same_path_t {};
  static constexpr same_path_t same_path{};
  // A scope at the same path as `parent` (an attempt of the call `parent` is the scope of),
  // sharing its path rather than copying it. `retry`: not the call's first attempt.
  invocation_scope(same_path_t, invocation_scope& parent, bool retry) noexcept
      : inv_(parent.inv_), path_(parent.path_), parent_(&parent), may_replay_(retry || parent.may_replay_) {
    parent_->retain();
  }
  // A scope at `path` (a fan-out's child), inside `parent`.
  invocation_scope(invocation_progress& inv, const path_buffer& path, invocation_scope* parent)
      : invocation_scope(inv, path.view(), parent) {}
  // No end_attempt here: an attempt's scope holds a reference to its call's, so the call's
  // scope ends only after the call dropped its attempt (call_journal).
  ~invocation_scope() override {
    if (parent_ != nullptr) parent_->release();
  }

  std::uint32_t take_position() noexcept { return next_.fetch_add(1, std::memory_order_relaxed); }

  invocation_progress* inv_;
  path_buffer own_path_;  // empty when the path is the parent's
  path_view path_;        // own_path_, or the parent's (kept alive by the reference to it)
  invocation_scope* parent_;
  bool may_replay_ = false;
  std::atomic<std::uint32_t> next_{0};
  std::atomic<bool> abandoned_{false};
  // For a call's scope: the scope of its current attempt, one reference owned by the call's
  // scope, which the call sets and drops (begin_attempt, end_attempt).
  invocation_scope* current_attempt_ = nullptr;
};

}  // namespace durable::detail
