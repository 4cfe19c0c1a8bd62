// detail/mersenne_twister.hpp — the runtime's random generator: the 64-bit Mersenne Twister,
// with the parameters the C++ standard gives std::mt19937_64 ([rand.predef]), so a seed gives
// the same sequence as std::mt19937_64 on any standard library. Written out here so that a
// program that only retries does not pay for <random> (about a third of a second of g++ per
// translation unit); tests/random_test.cpp compares it with std::mt19937_64.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace durable::detail {

class mersenne_twister_64 {
 public:
  explicit mersenne_twister_64(std::uint64_t seed) noexcept {
    state_[0] = seed;
    for (std::size_t i = 1; i < n; ++i) {
      state_[i] = 6364136223846793005ULL * (state_[i - 1] ^ (state_[i - 1] >> 62)) + i;
    }
  }

  /// The next 64 random bits.
  std::uint64_t operator()() noexcept {
    if (next_ == n) twist();
    std::uint64_t z = state_[next_++];
    z ^= (z >> 29) & 0x5555555555555555ULL;
    z ^= (z << 17) & 0x71d67fffeda60000ULL;
    z ^= (z << 37) & 0xfff7eee000000000ULL;
    z ^= z >> 43;
    return z;
  }

 private:
  static constexpr std::size_t n = 312;
  static constexpr std::size_t m = 156;
  static constexpr std::uint64_t lower_bits = (std::uint64_t{1} << 31) - 1;  // r = 31
  static constexpr std::uint64_t upper_bits = ~lower_bits;

  void twist() noexcept {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t y = (state_[i] & upper_bits) | (state_[(i + 1) % n] & lower_bits);
      state_[i] = state_[(i + m) % n] ^ (y >> 1) ^ ((y & 1) != 0 ? 0xb5026f5aa96619e9ULL : 0);
    }
    next_ = 0;
  }

  std::array<std::uint64_t, n> state_{};
  std::size_t next_ = n;
};

/// A seed for a runtime given none: different for every runtime and every run (the clocks, an
/// address that moves with ASLR, and a counter), mixed by splitmix64's finaliser. Jitter needs
/// spread, not secrecy.
inline std::uint64_t fresh_seed() noexcept {
  static std::atomic<std::uint64_t> made{0};
  std::uint64_t x = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  x ^= static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) << 1;
  x ^= static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&made));
  x += (made.fetch_add(1, std::memory_order_relaxed) + 1) * 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace durable::detail
