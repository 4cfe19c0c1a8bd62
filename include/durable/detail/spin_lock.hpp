// durable/detail/spin_lock.hpp — a lock for a few instructions' worth of work.
//
// The runtime's list of spawned roots is touched twice per spawned task (linked by the thread
// that spawns it, unlinked by the one that finishes it), for a handful of instructions each
// time. Under a std::mutex two threads doing that at once put one of them to sleep in the
// kernel (a futex wait and a context switch: microseconds, for nanoseconds of work); spinning
// for the other to finish costs nanoseconds instead. Meets BasicLockable (std::lock_guard).
#pragma once

#include <atomic>
#include <thread>

namespace durable::detail {

class spin_lock {
 public:
  void lock() noexcept {
    for (;;) {
      // acquire: what the previous holder wrote under the lock is seen.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      // Wait reading, not writing, so the line is not bounced between the waiters; after a
      // while, yield: the holder may have been preempted (two cores, more threads).
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 64) {
          relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  std::atomic<bool> locked_{false};
};

}  // namespace durable::detail
