// durable/detail/result.hpp — what a finished task holds: nothing yet, a value, or a fault.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "../error.hpp"
#include "frame_pool.hpp"
#include "../status.hpp"

namespace durable::detail {

/// A flag that copies and moves of its owner do not take along.
struct not_copied_flag {
  bool value = false;
  constexpr not_copied_flag() noexcept = default;
  constexpr not_copied_flag(bool v) noexcept : value(v) {}  // NOLINT: implicit, for aggregates
  constexpr not_copied_flag(const not_copied_flag&) noexcept {}
  constexpr not_copied_flag& operator=(const not_copied_flag&) noexcept { return *this; }
  constexpr explicit operator bool() const noexcept { return value; }
};

/// Why an attempt (or a plain task) did not produce a value.
struct fault {
  status code = status::permanent_error;
  /// The exception that ended the body; null for `fail` and output inspection.
  std::exception_ptr exception;
  /// For `fail` and output inspection: what went wrong (read it with `text()`).
  std::string message;
  /// A `fail` message given as characters (a literal, a string_view), not copied yet: a call
  /// that retries never needs the text. Valid while the task that failed exists, so it is
  /// copied into `message` (`keep_text`) whenever the fault is taken out of that task.
  std::string_view borrowed;
  std::optional<std::chrono::nanoseconds> retry_after;
  /// A child call already gave up (a durable::failure): the enclosing call must not retry.
  bool final = false;
  failure_reason reason = failure_reason::fatal_status;
  /// What went wrong, for `fail` and output inspection.
  [[nodiscard]] std::string_view text() const noexcept {
    return borrowed.data() != nullptr ? borrowed : std::string_view(message);
  }
  /// Copies a borrowed message into the fault, which may then outlive the task that failed.
  /// Without memory for it the message is lost, not the fault.
  void keep_text() noexcept {
    if (borrowed.data() == nullptr) return;
    try {
      message.assign(borrowed);
    } catch (...) {
    }
    borrowed = {};
  }

  /// The shared out-of-memory fault, which is never freed. (A flag rather than a comparison
  /// with its address, which would cost the static's initialisation check on every free.)
  /// A copy of that fault is an ordinary one: the flag is not copied.
  not_copied_flag shared;
};

/// The fault used when there is no memory for a fault: what std::bad_alloc stands for, with no
/// message. Shared and never freed, so reporting out-of-memory needs no memory.
inline const fault& out_of_memory_fault() noexcept {
  static const fault f{status::temporary_error, {}, {}, {}, {}, false, failure_reason::fatal_status, true};
  return f;
}

/// Frees a fault (not the shared one). Out of line: a fault_ptr is destroyed in the teardown of
/// every task frame, where inline it cost the string's and the exception_ptr's destructors in
/// code and saved registers even though almost every task ends without a fault.
[[gnu::noinline]] inline void destroy_fault(fault* f) noexcept {
  if (f->shared) return;
  f->~fault();
  deallocate_frame(f, sizeof(fault));
}

/// Faults are allocated like frames (recycled per thread), so a failed attempt costs no malloc.
struct fault_deleter {
  void operator()(fault* f) const noexcept { destroy_fault(f); }
};
using fault_ptr = std::unique_ptr<fault, fault_deleter>;

/// A fault holding what `make()` returns, built in place; the out-of-memory fault when there is
/// no memory for it.
template <class Make>
[[nodiscard]] fault_ptr make_fault_with(Make&& make) noexcept {
  void* memory = nullptr;
  try {
    memory = allocate_frame(sizeof(fault));
    return fault_ptr(::new (memory) fault(std::forward<Make>(make)()));
  } catch (...) {  // allocation failed (or copying a message did)
    if (memory != nullptr) deallocate_frame(memory, sizeof(fault));
    return fault_ptr(const_cast<fault*>(&out_of_memory_fault()));
  }
}

[[nodiscard]] inline fault_ptr make_fault(fault&& f) noexcept {
  return make_fault_with([&f]() noexcept { return std::move(f); });
}

/// A placeholder value for `void` results, so one result type serves every T.
struct void_value {};

template <class T>
struct stored {
  using type = T;
};
template <class T>
struct stored<T&> {
  using type = T*;
};
template <>
struct stored<void> {
  using type = void_value;
};

/// Where a result keeps its value. In general a std::optional. A value that is trivially
/// copyable and destructible (an int, a pointer, a status, void's) is kept without the flag
/// that says whether it is there: nothing needs destroying, and a finished task holds either a
/// fault or a value, so code that saw the task finish (the only code that reads its value)
/// knows which from the fault alone. That is one store less for every task created and one for
/// every value returned (instructions per create+await: 130, against 132 with the flag).
template <class V, bool Flagless = std::is_trivially_copyable_v<V> && std::is_trivially_destructible_v<V>>
class value_slot {
 public:
  template <class... A>
  void emplace(A&&... a) {
    value_.emplace(std::forward<A>(a)...);
  }
  void reset() noexcept { value_.reset(); }
  // Only after the task finished without a fault.
  [[nodiscard]] V& get() noexcept { return *value_; }

 private:
  std::optional<V> value_;
};
template <class V>
class value_slot<V, true> {
 public:
  value_slot() noexcept {}  // the value is not there yet: left unset
  template <class... A>
  void emplace(A&&... a) {
    std::construct_at(&value_, std::forward<A>(a)...);
  }
  void reset() noexcept {}
  [[nodiscard]] V& get() noexcept { return value_; }

 private:
  union {
    V value_;
  };
};

/// The outcome of a task: empty until it finishes, then a value or a fault. The fault lives out
/// of line so that the frames of tasks that succeed stay small.
template <class T>
class result {
 public:
  using value_storage = typename stored<T>::type;

  template <class... A>
  void set_value(A&&... a) {
    if constexpr (std::is_reference_v<T>) {
      static_assert(sizeof...(A) == 1);
      value_.emplace(std::addressof(a)...);
    } else {
      value_.emplace(std::forward<A>(a)...);
    }
  }
  void set_fault(fault f) noexcept {
    value_.reset();
    fault_ = make_fault(std::move(f));
  }
  void set_fault(fault_ptr f) noexcept {
    value_.reset();
    fault_ = std::move(f);
  }
  /// Builds the fault `make()` returns directly in its final place (no intermediate moves).
  template <class Make>
  void emplace_fault(Make&& make) noexcept {
    value_.reset();
    fault_ = make_fault_with(std::forward<Make>(make));
  }

  /// Takes the outcome of `other`, a task that finished, by move-constructing (T need not be
  /// assignable).
  void take_from(result& other) {
    value_.reset();
    if (!other.has_fault()) value_.emplace(std::move(other.value_.get()));
    fault_ = other.release_fault();
  }

  [[nodiscard]] bool has_fault() const noexcept { return fault_ != nullptr; }
  /// The fault, or null: for a test that needs only the address.
  [[nodiscard]] const fault* fault_address() const noexcept { return fault_.get(); }
  /// Frees the fault now, if there is one.
  void drop_fault() noexcept { fault_.reset(); }
  [[nodiscard]] fault& get_fault() noexcept { return *fault_; }
  [[nodiscard]] const fault& get_fault() const noexcept { return *fault_; }
  /// The fault, taken out to outlive the task: its message is kept (see fault::borrowed).
  [[nodiscard]] fault_ptr release_fault() noexcept {
    if (fault_ != nullptr && !fault_->shared) fault_->keep_text();
    return std::move(fault_);
  }
  /// The value (the task finished without a fault).
  [[nodiscard]] value_storage& storage() noexcept { return value_.get(); }

  /// The value, moved out (a reference for T&, nothing for void; the task finished without a
  /// fault).
  decltype(auto) take_value() {
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(*value_.get());
    } else {
      return T(std::move(value_.get()));
    }
  }

 private:
  value_slot<value_storage> value_;
  fault_ptr fault_;
};

}  // namespace durable::detail
