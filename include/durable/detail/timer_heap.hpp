// durable/detail/timer_heap.hpp — the runtime's timers: a 4-ary min-heap.
//
// A binary heap's pop walks log2(n) levels, each a cache miss once the heap outgrows the
// cache's nearest level (10,000 timers are 240 KB); four children per node halve the levels,
// and the four children a step compares sit next to each other (96 bytes: one or two lines).
// Pushes, which only walk up, get shorter too. Measured against std::priority_queue in
// benchmarks/timers.cpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace durable::detail {

/// A min-heap of `T` ordered by `T::operator>` (the smallest on top), with a sweep that drops
/// entries in one pass.
template <class T>
class timer_heap {
 public:
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] const T& top() const noexcept { return items_.front(); }

  void push(const T& item) {
    items_.push_back(item);
    sift_up(items_.size() - 1);
  }

  void pop() noexcept {
    const T last = items_.back();
    items_.pop_back();
    if (!items_.empty()) sift_down(0, last);
  }

  /// Removes every entry for which `dead` is true (after calling it on each), keeping the
  /// rest a heap.
  template <class Predicate>
  void sweep(Predicate dead) {
    items_.erase(std::remove_if(items_.begin(), items_.end(), dead), items_.end());
    for (std::size_t i = items_.size() / arity + 1; i-- > 0;) {
      if (i < items_.size()) sift_down(i, items_[i]);
    }
  }

 private:
  static constexpr std::size_t arity = 4;

  void sift_up(std::size_t i) noexcept {
    const T item = items_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / arity;
      if (!(items_[parent] > item)) break;
      items_[i] = items_[parent];
      i = parent;
    }
    items_[i] = item;
  }

  // Places `item` at `i` or below, moving smaller children up.
  void sift_down(std::size_t i, const T item) noexcept {
    const std::size_t n = items_.size();
    for (;;) {
      const std::size_t first = i * arity + 1;
      if (first >= n) break;
      std::size_t smallest = first;
      const std::size_t end = std::min(first + arity, n);
      for (std::size_t c = first + 1; c < end; ++c) {
        if (items_[smallest] > items_[c]) smallest = c;
      }
      if (!(item > items_[smallest])) break;
      items_[i] = items_[smallest];
      i = smallest;
    }
    items_[i] = item;
  }

  std::vector<T> items_;
};

}  // namespace durable::detail
