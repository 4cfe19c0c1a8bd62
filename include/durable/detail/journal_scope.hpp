// durable/detail/journal_scope.hpp — what calls, sleeps and fan-outs see of a journaled
// invocation: where the running code is in it, as an abstract scope.
//
// An invocation started with `invocations::start` runs with a scope in its contexts; a call,
// sleep or fan-out made in it asks its scope for the scope of its own place, looks there for
// what was recorded before a restart, and records what it did. The records, their encoding and
// the call paths are the invocation layer's (invocation_scope.hpp implements this): a program
// that only retries never compiles them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../error.hpp"
#include "../status.hpp"

namespace durable::detail {

/// A call's recorded retry wait: what the call goes on from after a restart.
struct recorded_retry_wait {
  /// The attempt that failed before the wait (0: no retry wait recorded).
  std::uint32_t failed_attempt = 0;
  /// How that attempt failed.
  status last = status::ok;
  /// When the retry is due.
  time_point wake_at{};
  /// When the call's first attempt started (ns since the epoch), if the wait recorded it.
  std::optional<std::int64_t> first_attempt_ns{};
};

/// Where running code is in a journaled invocation. Reference-counted: a call, its attempt
/// running in the background and a fan-out's children may all hold one. Thread-safe, except
/// that a call's own scope is used by that call alone.
class journal_scope {
 public:
  journal_scope(const journal_scope&) = delete;
  journal_scope& operator=(const journal_scope&) = delete;

  /// Takes one more reference.
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Drops one reference; the last one destroys the scope. Acq_rel: the last release sees
  /// every write the other holders made before theirs.
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// The scope of the next call or fan-out made from here: it takes the next position (as a
  /// sleep does, in journaled_wake). One reference, the caller's.
  [[nodiscard]] virtual journal_scope* enter() = 0;
  /// For a fan-out's scope: the scope of its child `index`. One reference, the caller's.
  [[nodiscard]] virtual journal_scope* child(std::size_t index) = 0;

  /// For a call's scope: checks that another step may start (throws a journal_failure if not),
  /// abandons the previous attempt's scope and drops this scope's reference to it (an attempt
  /// still running in the background may keep it alive, but writes nothing more), and returns
  /// the scope the attempt `attempt_number` runs in, owned by this scope until `end_attempt`.
  [[nodiscard]] virtual journal_scope* begin_attempt(std::uint32_t attempt_number) = 0;
  /// For a call's scope: drops its current attempt's scope (which holds a reference to this one).
  virtual void end_attempt() noexcept = 0;
  /// For an attempt's scope: its call walked away from it. The attempt goes on in the
  /// background, but nothing it does is journaled any more.
  virtual void abandon() noexcept = 0;
  /// True if this scope or one it is inside was abandoned: nothing here may be journaled.
  [[nodiscard]] virtual bool abandoned() const noexcept = 0;

  /// For a call's scope: true if the journal recorded this call's completion. A sleep or a call
  /// of another function recorded here means the code changed: a journal mismatch is thrown.
  [[nodiscard]] virtual bool completed(std::string_view name) const = 0;
  /// For a call's scope, after `completed`: the recorded value's encoding, or the recorded
  /// failure thrown again (named `name`).
  [[nodiscard]] virtual std::vector<std::byte> recorded_value(std::string_view name) const = 0;
  /// For a call's scope: its recorded retry wait, if any (failed_attempt 0 if none).
  [[nodiscard]] virtual recorded_retry_wait retry_wait() const = 0;
  /// For a call's scope: journals a retry wait (not durably: lost in a crash, the call just
  /// starts over sooner), with when the first attempt started if the call has a deadline.
  virtual void waiting(std::uint32_t attempt, status last, time_point wake_at,
                       std::optional<std::int64_t> first_attempt_ns) = 0;
  /// For a call's scope: journals its value (`value`, encoded), durably, before its caller resumes.
  virtual void succeeded(std::string_view name, std::uint32_t attempts, std::span<const std::byte> value) = 0;
  /// For a call's scope: journals its failure, durably, before its caller sees it. A
  /// cancellation is not journaled (after a restart the call runs again), nor a journal
  /// mismatch (the invocation starts over anyway), nor a journal failure (nothing more can be
  /// written).
  virtual void failed(const failure& f) = 0;

  /// A sleep made from here until `wake`: takes the next position, and returns when it ends,
  /// the time its first run recorded after a restart (recording it on the first run).
  [[nodiscard]] virtual time_point journaled_wake(time_point wake) = 0;
  /// A sleep of the invocation's body itself (nothing else of it runs) until `wake`, made
  /// from here: true if the invocation is parked instead (its store wakes it then, on whichever
  /// worker), and the sleep ends the run.
  [[nodiscard]] virtual bool park_until(time_point wake, time_point now) = 0;

 protected:
  journal_scope() noexcept = default;
  virtual ~journal_scope() = default;

 private:
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
  /// The scope (null if none), still owned by this reference.
  [[nodiscard]] journal_scope* get() const noexcept { return scope_; }
  journal_scope* operator->() const noexcept { return scope_; }
  /// True if this holds a scope.
  explicit operator bool() const noexcept { return scope_ != nullptr; }

 private:
  journal_scope* scope_ = nullptr;
};

}  // namespace durable::detail
