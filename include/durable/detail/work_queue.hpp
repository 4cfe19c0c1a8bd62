// durable/detail/work_queue.hpp — a worker thread's own ready queue, which other workers steal
// from.
//
// One thread (the owner) pushes; the owner and any number of thieves take, all from the head,
// so the queue stays first in, first out for everyone (an endless stream of immediate retries
// queues behind what was ready before it, instead of overtaking it as the owner's end of a
// Chase-Lev deque would). It is a ring of fixed size: the owner writes only at `tail`, which it
// alone moves; takers claim slots by moving `head` forward with a compare-and-swap, so a thief
// takes half of what is queued in one step.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace durable::detail {

class work_queue {
 public:
  static constexpr std::uint32_t capacity = 4096;  // a power of two: positions wrap with a mask

  /// What `push` did.
  enum class pushed : std::uint8_t {
    full,         ///< nothing: the owner moves work elsewhere (`take`, and the shared queue)
    onto_empty,   ///< the queue looked empty before (a sleeping worker may need waking)
    onto_others,  ///< the queue held work already
  };

  /// Adds `h` at the tail (the owner only).
  pushed push(std::coroutine_handle<> h) noexcept {
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only this thread writes it
    // acquire: a taker's reads of the slots it claimed come before this thread rewrites them.
    const std::uint32_t queued = t - head_.load(std::memory_order_acquire);
    if (queued >= capacity) return pushed::full;
    slots_[t & mask].store(h.address(), std::memory_order_relaxed);
    // release: whoever sees the new tail sees the slot, and what the coroutine wrote before it
    // was queued.
    tail_.store(t + 1, std::memory_order_release);
    return queued == 0 ? pushed::onto_empty : pushed::onto_others;
  }

  /// Takes the item at the head (the owner, or anyone); null when empty.
  std::coroutine_handle<> pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      if (h == t) return {};
      void* item = slots_[h & mask].load(std::memory_order_relaxed);
      // acq_rel: the slot is read before the claim is published (the owner may reuse it after),
      // and a failed claim reloads `h`.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        return std::coroutine_handle<>::from_address(item);
    }
  }

  /// Moves half (rounded up) of what this queue holds into `into`, which must be empty and owned
  /// by the calling thread. Returns how many moved; 0 when this queue was empty.
  std::uint32_t steal_into(work_queue& into) noexcept {
    const std::uint32_t mine = into.tail_.load(std::memory_order_relaxed);
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      const std::uint32_t queued = t - h;
      // More than the capacity: `h` is stale (others took from it meanwhile); read it again.
      if (queued == 0) return 0;
      if (queued > capacity) {
        h = head_.load(std::memory_order_acquire);
        continue;
      }
      const std::uint32_t n = queued - queued / 2;
      for (std::uint32_t i = 0; i < n; ++i) {
        into.slots_[(mine + i) & mask].store(slots_[(h + i) & mask].load(std::memory_order_relaxed),
                                             std::memory_order_relaxed);
      }
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel, std::memory_order_acquire)) {
        into.tail_.store(mine + n, std::memory_order_release);
        return n;
      }
    }
  }

  /// Claims up to `max` items from the head into `out` (the owner, to move work out of a full
  /// queue). Returns how many.
  std::uint32_t take(std::coroutine_handle<>* out, std::uint32_t max) noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      const std::uint32_t n = t - h < max ? t - h : max;
      if (n == 0) return 0;
      for (std::uint32_t i = 0; i < n; ++i)
        out[i] = std::coroutine_handle<>::from_address(slots_[(h + i) & mask].load(std::memory_order_relaxed));
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel, std::memory_order_acquire)) return n;
    }
  }

  /// How many are queued (a snapshot, as for `empty`).
  [[nodiscard]] std::uint32_t size_hint() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);  // first: the tail is never behind it
    return tail_.load(std::memory_order_acquire) - h;
  }

  /// True if nothing is queued (a snapshot: another thread may push or take right after).
  [[nodiscard]] bool empty() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);  // first: the tail is never behind it
    return tail_.load(std::memory_order_acquire) == h;
  }

 private:
  static constexpr std::uint32_t mask = capacity - 1;
  // Apart, so that thieves moving the head do not slow the owner's pushes to the tail (and the
  // queues of two workers never share a line).
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  alignas(64) std::atomic<void*> slots_[capacity]{};
};

}  // namespace durable::detail
