// durable/detail/finished_index.hpp — where a journal store finds a finished invocation's
// outcome: a hash of its id and the position of the outcome record in the journal, 16 bytes per
// slot, nothing more kept in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace durable::detail {

/// A multimap from id hashes to journal positions: open addressing, linear probing, at most half
/// full. Several ids may share a hash, so a lookup yields candidates that the caller checks
/// against the record it reads back. Not thread-safe.
class finished_index {
 public:
  [[nodiscard]] static std::uint64_t hash_of(std::string_view id) noexcept {
    const std::uint64_t h = std::hash<std::string_view>{}(id);
    return h == 0 ? 1 : h;  // 0 marks an empty slot
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
