// durable/detail/inject_queue.hpp — how work posted by threads that are not workers reaches a
// runtime's workers without the runtime's lock.
//
// A bounded ring of coroutine handles that any number of threads push to and any number take
// from, each claiming positions with one compare-and-swap. Every cell carries a turn saying
// who may use it next: the pusher of position p waits for turn p, the taker of p for p + 1, and
// the taker hands the cell on to the pusher of p + capacity. A thread that finds the ring full
// (or empty) is told so at once and never waits for another thread: the runtime then falls back
// on its shared queue under its lock. First in, first out for each pushing thread.
//
// A taker claims a batch per compare-and-swap: taking one item per CAS measured slower on one
// worker than the locked shared queue, and padding every cell to a line of its own slower still
// (docs/DESIGN.md, "Posts from other threads").
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>

namespace durable::detail {

class inject_queue {
 public:
  static constexpr std::size_t capacity = 4096;  // a power of two: positions wrap with a mask

  inject_queue() noexcept {
    for (std::size_t i = 0; i < capacity; ++i) cells_[i].turn.store(i, std::memory_order_relaxed);
  }
  inject_queue(const inject_queue&) = delete;
  inject_queue& operator=(const inject_queue&) = delete;

  /// Adds `h` at the tail; false, having changed nothing, if the ring is full.
  bool push(std::coroutine_handle<> h) noexcept {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask];
      // acquire: the taker that handed this cell on read its item before this thread rewrites it.
      const std::size_t turn = c.turn.load(std::memory_order_acquire);
      if (turn == pos) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.item = h.address();
          // release: a taker that sees this turn sees the item, and what the pusher wrote before.
          c.turn.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (turn < pos) {
        return false;  // the cell still holds what was pushed one lap ago
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another pusher took this position
      }
    }
  }

  /// Takes up to `max` items from the head into `out`, in order, with one compare-and-swap.
  /// Returns how many: 0 when the ring is empty, or when its head item is still being written
  /// (the taker comes back later rather than wait for the pusher).
  std::size_t take(std::coroutine_handle<>* out, std::size_t max) noexcept {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      std::size_t n = 0;
      // acquire: pairs with each pusher's release of the turn, so the items read below are theirs.
      while (n < max && cells_[(pos + n) & mask].turn.load(std::memory_order_acquire) == pos + n + 1) ++n;
      if (n == 0) {
        const std::size_t now = head_.load(std::memory_order_relaxed);
        if (now == pos) return 0;
        pos = now;  // other takers moved the head: look again from there
        continue;
      }
      if (head_.compare_exchange_weak(pos, pos + n, std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < n; ++i) {
          cell& c = cells_[(pos + i) & mask];
          out[i] = std::coroutine_handle<>::from_address(c.item);
          // release: the pusher of the next lap rewrites the cell only after this read.
          c.turn.store(pos + i + capacity, std::memory_order_release);
        }
        return n;
      }
    }
  }

  /// True if nothing is queued (a snapshot: another thread may push or take right after).
  [[nodiscard]] bool empty() const noexcept {
    const std::size_t head = head_.load(std::memory_order_acquire);
    return cells_[head & mask].turn.load(std::memory_order_acquire) != head + 1;
  }

 private:
  static constexpr std::size_t mask = capacity - 1;
  struct cell {
    std::atomic<std::size_t> turn;
    void* item = nullptr;  // written by its pusher before the turn says so, read by its taker after
  };
  // Apart, so that pushers and takers do not write to one line.
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) cell cells_[capacity];
};

}  // namespace durable::detail
