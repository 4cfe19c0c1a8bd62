// durable/clock.hpp — time as durable sees it, and the virtual clock tests run on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace durable {

/// An absolute time. Wall-clock based, so that a wake-up time written to a journal still means
/// the same instant after a restart.
using time_point = std::chrono::time_point<std::chrono::system_clock, std::chrono::nanoseconds>;

/// Virtual time for tests. A runtime built on a manual clock never waits for real: when nothing
/// is ready to run and no thread is busy, it jumps the clock to the next timer. Time only moves
/// forward. Safe to read from any thread.
class manual_clock {
 public:
  /// Starts at the epoch of `time_point`.
  manual_clock() noexcept = default;
  /// Starts at `start`.
  explicit manual_clock(time_point start) noexcept : ticks_(start.time_since_epoch().count()) {}
  manual_clock(const manual_clock&) = delete;
  manual_clock& operator=(const manual_clock&) = delete;

  /// The current virtual time.
  [[nodiscard]] time_point now() const noexcept {
    return time_point(std::chrono::nanoseconds(ticks_.load(std::memory_order_acquire)));
  }
  /// Moves time forward by `d` (a negative `d` is ignored).
  void advance(std::chrono::nanoseconds d) noexcept {
    if (d > std::chrono::nanoseconds::zero()) ticks_.fetch_add(d.count(), std::memory_order_acq_rel);
  }
  /// Moves time forward to `t`; does nothing if `t` is not later than now.
  void advance_to(time_point t) noexcept {
    std::int64_t target = t.time_since_epoch().count();
    std::int64_t seen = ticks_.load(std::memory_order_acquire);
    while (seen < target && !ticks_.compare_exchange_weak(seen, target, std::memory_order_acq_rel)) {
    }
  }

 private:
  std::atomic<std::int64_t> ticks_{0};
};

namespace detail {
/// `t + d`, saturating at the ends of time instead of overflowing (a huge delay means "never").
[[nodiscard]] constexpr time_point add_saturating(time_point t, std::chrono::nanoseconds d) noexcept {
  const std::int64_t base = t.time_since_epoch().count();
  const std::int64_t delta = d.count();
  std::int64_t sum = 0;
  if (__builtin_add_overflow(base, delta, &sum)) return delta > 0 ? time_point::max() : time_point::min();
  return time_point(std::chrono::nanoseconds(sum));
}

/// `a - b`, saturated at the limits of nanoseconds instead of overflowing (a time read back from
/// a journal may be anything).
[[nodiscard]] constexpr std::chrono::nanoseconds sub_saturating(time_point a, time_point b) noexcept {
  std::int64_t difference = 0;
  if (__builtin_sub_overflow(a.time_since_epoch().count(), b.time_since_epoch().count(), &difference)) {
    return a > b ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds::min();
  }
  return std::chrono::nanoseconds(difference);
}
}  // namespace detail

}  // namespace durable
