// durable/detail/hash_index.hpp — positions found by a 64-bit hash, 16 bytes per slot: where a
// journal store finds a finished invocation's outcome record, and where an invocation finds the
// completions it recorded while it runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace durable::detail {

/// A multimap from hashes to positions: open addressing, linear probing, at most half full.
/// Several keys may share a hash, so a lookup yields candidates that the caller checks against
/// what it finds at each position. Not thread-safe.
class hash_index {
 public:
  [[nodiscard]] static std::uint64_t hash_of(std::string_view id) noexcept {
    return nonzero(std::hash<std::string_view>{}(id));
  }
  /// A hash of a sequence of integers (a call path): FNV-1a over their bytes, then mixed.
  template <class Range>
  [[nodiscard]] static std::uint64_t hash_of_numbers(const Range& numbers) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const auto n : numbers) h = (h ^ static_cast<std::uint64_t>(n)) * 0x100000001b3ull;
    h ^= h >> 33;  // the low bits pick the slot: fold the high ones in
    return nonzero(h * 0xff51afd7ed558ccdull);
  }

  void insert(std::uint64_t hash, std::uint64_t position) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(slots_, slot{hash, position});
    ++size_;
  }

  /// Calls `candidate(position)` for each position stored under `hash` until it returns true;
  /// returns whether one did.
  template <class F>
  bool find(std::uint64_t hash, F candidate) const {
    if (slots_.empty()) return false;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = static_cast<std::size_t>(hash) & mask;; i = (i + 1) & mask) {
      if (slots_[i].hash == 0) return false;
      if (slots_[i].hash == hash && candidate(slots_[i].position)) return true;
    }
  }

  /// True if some id with this hash is stored (a candidate, to be checked).
  [[nodiscard]] bool may_contain(std::uint64_t hash) const {
    return find(hash, [](std::uint64_t) { return true; });
  }

  void clear() noexcept {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  [[nodiscard]] static std::uint64_t nonzero(std::uint64_t h) noexcept { return h == 0 ? 1 : h; }  // 0: empty slot

  struct slot {
    std::uint64_t hash = 0;
    std::uint64_t position = 0;
  };

  static void place(std::vector<slot>& slots, slot s) {
    const std::size_t mask = slots.size() - 1;
    std::size_t i = static_cast<std::size_t>(s.hash) & mask;
    while (slots[i].hash != 0) i = (i + 1) & mask;
    slots[i] = s;
  }

  void grow() {
    std::vector<slot> bigger(slots_.empty() ? 64 : slots_.size() * 2);
    for (const slot& s : slots_)
      if (s.hash != 0) place(bigger, s);
    slots_.swap(bigger);
  }

  std::vector<slot> slots_;  // a power of two in size
  std::size_t size_ = 0;
};

}  // namespace durable::detail
