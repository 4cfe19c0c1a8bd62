// durable/detail/journal_scope.hpp — where running code is in a journaled invocation.
//
// An invocation started with `invocations::start` runs with a `journal_scope` in its contexts.
// A scope says where the running code is in the invocation (its call path) and counts the calls
// and sleeps made from there, which gives each of them its deterministic path. A call looks its
// path up in what was recorded before a restart (`invocation_progress`): a completed call
// returns the recorded outcome without running; a call that was waiting for a retry goes on
// from its recorded attempt at its recorded time; anything else runs and is recorded.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"
#include "../status.hpp"
#include "call_records.hpp"

namespace durable::detail {

/// What the calls and sleeps of one journaled invocation read and write: its recorded
/// progress, and new records. The invocation layer implements it over a store
/// (invocation_journal.hpp). Thread-safe.
class invocation_progress {
 public:
  [[nodiscard]] virtual const std::string& id() const noexcept = 0;
  /// The recorded completion of the call at `path`, if any.
  [[nodiscard]] virtual std::optional<call_completed_record> completed(const call_path& path) const = 0;
  /// The recorded wait of the call or sleep at `path`, if any (and if not completed since).
  [[nodiscard]] virtual std::optional<wait_scheduled_record> wait(const call_path& path) const = 0;
  /// Records a retry wait or a sleep, not durably (lost in a crash, the wait just starts over).
  virtual void record_wait(const wait_scheduled_record& wait) = 0;
  /// Records a call's completion, durably (its caller resumes after this), and remembers it.
  virtual void complete(call_completed_record record) = 0;

 protected:
  ~invocation_progress() = default;
};

/// Where running code is in a journaled invocation. Reference-counted: a call, its attempt
/// running in the background and a fan-out's children may all hold one.
class journal_scope {
 public:
  /// A scope at `path`, inside `parent` (null for the invocation's root), which it keeps alive.
  journal_scope(invocation_progress& inv, call_path path, journal_scope* parent) noexcept
      : inv_(&inv), path_(std::move(path)), parent_(parent) {
    if (parent_ != nullptr) parent_->retain();
  }
  journal_scope(const journal_scope&) = delete;
  journal_scope& operator=(const journal_scope&) = delete;
  ~journal_scope() {
    if (parent_ != nullptr) parent_->release();
  }

  [[nodiscard]] invocation_progress& invocation() const noexcept { return *inv_; }
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
  invocation_progress* inv_;
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
