// durable/detail/handle_fifo.hpp — the runtime's shared ready queue: coroutine handles, first
// in first out.
//
// A vector and the index of its front, rather than a std::deque: pushing and popping touch one
// contiguous array and never allocate in the steady state, and the program does not pay for
// compiling a deque (issue 15; the runtime's other queues are vectors already).
#pragma once

#include <coroutine>
#include <cstddef>
#include <vector>

namespace durable::detail {

/// Coroutine handles, first in first out.
class handle_fifo {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == items_.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size() - head_; }
  /// The oldest handle (not empty).
  [[nodiscard]] std::coroutine_handle<> front() const noexcept { return items_[head_]; }

  void pop_front() noexcept {
    if (++head_ == items_.size()) clear();
  }

  void push_back(std::coroutine_handle<> h) {
    // Full, with at least half of it popped already: the popped prefix goes rather than the
    // vector growing. So it holds at most twice what is queued, and a compaction moves no
    // more handles than were pushed since the last one (amortised O(1) per push).
    if (items_.size() == items_.capacity() && 2 * head_ >= items_.size() && head_ != 0) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    items_.push_back(h);
  }

  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }

 private:
  std::vector<std::coroutine_handle<>> items_;
  std::size_t head_ = 0;  // items_[head_] is the front
};

}  // namespace durable::detail
