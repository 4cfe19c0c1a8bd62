// durable/retry_policy.hpp — how long to wait between attempts, and when to give up.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace durable {

/// How a computed backoff delay d is randomised.
enum class jitter : std::uint8_t {
  none,          ///< exactly d
  full,          ///< uniform in [0, d]
  equal,         ///< d/2 + uniform in [0, d/2]
  decorrelated,  ///< min(max_delay, uniform(initial_delay, 3 x previous delay))
};

/// The retry policy of a durable function (an aggregate: set only the fields you need).
/// Validated when the `durable::function` is constructed; in a constexpr declaration an invalid
/// policy is a compile error.
struct retry_policy {
  /// Delay before the second attempt.
  std::chrono::nanoseconds initial_delay = std::chrono::milliseconds(100);
  /// Growth of the delay per further attempt (at least 1, finite).
  double multiplier = 2.0;
  /// Cap on one delay; also caps retry-after hints.
  std::chrono::nanoseconds max_delay = std::chrono::seconds(60);
  /// Randomisation of each delay. (Inside this class the member hides the enum's name, so the
  /// enum is written fully qualified: g++ rejects the unqualified form, "changes meaning".)
  ::durable::jitter jitter = ::durable::jitter::full;
  /// 0: retry until it succeeds; N: at most N attempts in all.
  std::uint32_t max_attempts = 0;
  /// 0: no deadline; otherwise no attempt starts after this long since the first one, and
  /// delays are clipped to what remains.
  std::chrono::nanoseconds max_elapsed = std::chrono::nanoseconds::zero();
  /// 0: none; otherwise how long one attempt may run before it is asked to stop (through its
  /// stop token) and the call goes on at once as a `timeout` failure, retried like any other.
  /// An attempt that does not stop is left to finish in the background, its result discarded.
  std::chrono::nanoseconds attempt_timeout = std::chrono::nanoseconds::zero();

  /// Throws std::invalid_argument naming the first bad field.
  constexpr void validate() const {
    using std::chrono::nanoseconds;
    if (initial_delay < nanoseconds::zero())
      throw std::invalid_argument("durable::retry_policy: initial_delay must not be negative");
    if (!(multiplier >= 1.0) || multiplier > std::numeric_limits<double>::max())
      throw std::invalid_argument("durable::retry_policy: multiplier must be finite and at least 1");
    if (max_delay < nanoseconds::zero())
      throw std::invalid_argument("durable::retry_policy: max_delay must not be negative");
    if (max_delay < initial_delay)
      throw std::invalid_argument("durable::retry_policy: max_delay must not be below initial_delay");
    if (max_elapsed < nanoseconds::zero())
      throw std::invalid_argument("durable::retry_policy: max_elapsed must not be negative");
    if (attempt_timeout < nanoseconds::zero())
      throw std::invalid_argument("durable::retry_policy: attempt_timeout must not be negative");
  }
};

namespace detail {

/// Maps 64 random bits to [0, 1) the same way on every standard library.
[[nodiscard]] constexpr double unit_interval(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// A delay in nanoseconds kept exactly between retries: each one grows from the exact value of
/// the one before, and only the delay that is slept is rounded (see `to_delay`), so rounding
/// errors never accumulate (1 ns x 1.5 grows; 1 ms x 1.001 keeps its formula after 10,000 retries).
using exact_delay = double;

/// The exact delay rounded to whole nanoseconds, at most `max_delay`.
[[nodiscard]] constexpr std::chrono::nanoseconds to_delay(const retry_policy& p, exact_delay d) noexcept {
  if (!(d < static_cast<double>(p.max_delay.count()))) return p.max_delay;
  if (!(d > 0.0)) return std::chrono::nanoseconds::zero();
  return std::chrono::nanoseconds(static_cast<std::int64_t>(d + 0.5));
}

/// The un-jittered delay before the first retry: `min(max_delay, initial_delay)`.
[[nodiscard]] constexpr exact_delay first_base_delay(const retry_policy& p) noexcept {
  return static_cast<double>((p.initial_delay < p.max_delay ? p.initial_delay : p.max_delay).count());
}

/// The un-jittered delay before retry n + 1 given the one before retry n: one multiplication
/// per retry, so `min(max_delay, initial_delay x multiplier^(n - 1))` costs the same after a
/// million retries, and never overflows (it saturates at max_delay).
[[nodiscard]] constexpr exact_delay next_base_delay(const retry_policy& p, exact_delay previous) noexcept {
  const double d = previous * p.multiplier;
  const double cap = static_cast<double>(p.max_delay.count());
  return d < cap ? d : cap;
}

/// The un-jittered delay before retry `n` + 1 (n >= 0) in one step, for a call that goes on
/// after a restart with `n` attempts behind it: as many steps of `next_base_delay` would take,
/// to within rounding, but without looping over them (n comes from a file and may be huge).
[[nodiscard]] inline exact_delay base_delay_after(const retry_policy& p, std::uint32_t n) noexcept {
  const double cap = static_cast<double>(p.max_delay.count());
  const double d = first_base_delay(p) * std::pow(p.multiplier, static_cast<double>(n));
  return d < cap ? d : cap;  // pow overflows to +inf, which is capped too
}

/// The delay chosen for one retry: `base` (the exact un-jittered delay for this retry)
/// randomised as the policy's jitter says, still exact (round it with `to_delay`). `previous`
/// is the exact delay chosen for the retry before (the decorrelated kind grows from it;
/// initial_delay before the first retry); `unit` is a random number in [0, 1).
[[nodiscard]] constexpr exact_delay jittered_delay(const retry_policy& p, exact_delay base, exact_delay previous,
                                                   double unit) noexcept {
  switch (p.jitter) {
    case jitter::none:
      return base;
    case jitter::full:
      return unit * base;
    case jitter::equal:
      return base / 2 + unit * (base / 2);
    case jitter::decorrelated: {
      const double low = static_cast<double>(p.initial_delay.count());
      const double high = 3.0 * previous;
      const double d = low + unit * (high > low ? high - low : 0.0);
      const double cap = static_cast<double>(p.max_delay.count());
      return d < cap ? d : cap;
    }
  }
  return base;
}

}  // namespace detail
}  // namespace durable
