// durable/detail/journal_scope.hpp — where running code is in a journaled invocation.
//
// An invocation started with `invocations::start` runs with a `journal_scope` in its contexts.
// A scope says where the running code is in the invocation (its call path) and counts the calls
// and sleeps made from there, which gives each of them its deterministic path. A call looks its
// path up in what was recorded before a restart (`invocation_progress`): a completed call
// returns the recorded outcome without running; a call that was waiting for a retry goes on
// from its recorded attempt at its recorded time; anything else runs and is recorded.
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

/// Where running code is in a journaled invocation. Reference-counted: a call, its attempt
/// running in the background and a fan-out's children may all hold one.
class journal_scope {
 public:
  /// A scope at `path`, inside `parent` (null for the invocation's root), which it keeps alive.
  journal_scope(invocation_progress& inv, path_view path, journal_scope* parent)
      : inv_(&inv), own_path_(path), path_(own_path_.view()), parent_(parent),
        may_replay_(parent != nullptr && parent->may_replay_) {
    if (parent_ != nullptr) parent_->retain();
  }
  /// The scope of the next call made from `parent` (what `parent.next_child()` names).
  struct next_child_t {};
  static constexpr next_child_t next_child_of{};
  journal_scope(next_child_t, journal_scope& parent)
      : inv_(parent.inv_),
        own_path_(parent.path_, parent.take_position()),
        path_(own_path_.view()),
        parent_(&parent),
        may_replay_(parent.may_replay_) {
    parent_->retain();
  }
  /// A scope at the same path as `parent` (an attempt of the call `parent` is the scope of),
  /// sharing its path rather than copying it. `retry`: not the call's first attempt.
  struct same_path_t {};
  static constexpr same_path_t same_path{};
  journal_scope(same_path_t, journal_scope& parent, bool retry) noexcept
      : inv_(parent.inv_), path_(parent.path_), parent_(&parent), may_replay_(retry || parent.may_replay_) {
    parent_->retain();
  }
  journal_scope(const journal_scope&) = delete;
  journal_scope& operator=(const journal_scope&) = delete;
  // Two scopes per journaled call: recycled as coroutine frames are (frame_pool.hpp).
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }
  ~journal_scope() {
    if (parent_ != nullptr) parent_->release();
  }

  [[nodiscard]] invocation_progress& invocation() const noexcept { return *inv_; }
  [[nodiscard]] path_view path() const noexcept { return path_; }
  /// True if calls made here may have completed earlier in this run: some enclosing call is on
  /// a retry, so its code runs again (calls it made before return their recorded outcome).
  [[nodiscard]] bool may_replay() const noexcept { return may_replay_; }

  /// The path of the next call or sleep made from here.
  [[nodiscard]] call_path next_child() {
    call_path child;
    child.reserve(path_.size() + 1);
    child.assign(path_.begin(), path_.end());
    child.push_back(take_position());
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

  /// For a call's scope: the scope of its current attempt, one reference owned by the call
  /// (call_journal), which sets and drops it.
  journal_scope* current_attempt = nullptr;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  std::uint32_t take_position() noexcept { return next_.fetch_add(1, std::memory_order_relaxed); }

  invocation_progress* inv_;
  path_buffer own_path_;  // empty when the path is the parent's
  path_view path_;        // own_path_, or the parent's (kept alive by the reference to it)
  journal_scope* parent_;
  bool may_replay_ = false;
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

}  // namespace durable::detail
