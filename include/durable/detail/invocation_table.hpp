// durable/detail/invocation_table.hpp — the unfinished invocations of an embedded store, and
// who may write to them: the state machine that memory_store and journal_store share.
//
//   start ──> running ──finish──> (gone from the table: the store keeps the outcome)
//     ^          │ ^
//     │   release│ │claim (epoch + 1)
//     │          v │
//     └──────── ready <──(due)── parked <──park── running
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../invocation_store.hpp"
#include "../journal.hpp"

namespace durable::detail {

/// Transparent hashing, so that a table of std::string keys is searched with a string_view.
struct string_hash {
  using is_transparent = void;
  [[nodiscard]] std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// An invocation's records after its started one, in order, in one buffer: appending one is a
/// copy into it, not an allocation.
class record_log {
 public:
  void append(std::uint8_t type, std::span<const std::byte> payload) {
    slots_.push_back(slot{bytes_.size(), payload.size(), type});
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
  }
  void append(const journal_record& r) { append(r.type, r.payload); }
  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
  [[nodiscard]] journal_record at(std::size_t i) const {
    const slot& s = slots_.at(i);
    const auto first = bytes_.begin() + static_cast<std::ptrdiff_t>(s.offset);
    return journal_record{s.type, {first, first + static_cast<std::ptrdiff_t>(s.size)}};
  }
  [[nodiscard]] std::vector<journal_record> all() const {
    std::vector<journal_record> out;
    out.reserve(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) out.push_back(at(i));
    return out;
  }

 private:
  struct slot {
    std::size_t offset;
    std::size_t size;
    std::uint8_t type;
  };
  std::vector<std::byte> bytes_;
  std::vector<slot> slots_;
};

/// Record `seq` of `e` (1 is the first after its started record), for `store`'s messages.
inline journal_record record_of(const auto& e, std::uint64_t seq, std::string_view store) {
  if (seq == 0 || seq > e.records.size())
    throw std::out_of_range("durable::" + std::string(store) + "::record: no record " + std::to_string(seq));
  return e.records.at(static_cast<std::size_t>(seq - 1));
}

/// Unfinished invocations by id, each with its records and its lease. Not thread-safe: its
/// store guards it with its own lock.
class invocation_table {
 public:
  struct entry {
    std::string function;
    journal_record started;
    record_log records;  // since the started record, in order (seq = index + 1)
    stored_state state = stored_state::ready;
    std::uint64_t epoch = 0;  // of the current (or last) lease
    std::uint64_t order = 0;  // creation order: claims take the oldest first
    time_point wake_at{};     // while parked
    bool cancel_requested = false;
    std::uint64_t last_lsn = 0;  // for journal_store: its latest record's lsn (0: none since open)
  };

  [[nodiscard]] entry* find(std::string_view id) {
    const auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] const entry* find(std::string_view id) const {
    const auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
  }

  /// Adds an unfinished invocation, ready to be claimed.
  entry& add(std::string id, std::string function, journal_record started) {
    auto [it, added] = entries_.try_emplace(std::move(id));
    entry& e = it->second;
    e.function = std::move(function);
    e.started = std::move(started);
    e.order = next_order_++;
    ready_.emplace(e.order, it->first);
    return e;
  }

  /// The entry `owner` holds; throws ownership_lost if its lease is not current.
  const entry& owned(const lease& owner, std::string_view what) const {
    return const_cast<invocation_table*>(this)->owned(owner, what);
  }
  entry& owned(const lease& owner, std::string_view what) {
    entry* e = find(owner.invocation);
    if (e == nullptr || e->state != stored_state::running || e->epoch != owner.epoch) {
      throw ownership_lost("durable: " + std::string(what) + " of invocation '" + owner.invocation + "' under epoch " +
                           std::to_string(owner.epoch) + " refused: " + why_not_current(e, owner));
    }
    return *e;
  }

  /// Hands the ready or parked invocation `id` to a new lease holder.
  claimed_invocation hand_out(const std::string& id, entry& e) {
    unlist(e);
    e.state = stored_state::running;
    ++e.epoch;
    return claimed_invocation{lease{id, e.epoch}, e.started, e.records.all(), e.cancel_requested};
  }

  /// Takes up to `max` invocations that are ready, or parked and due at `now`.
  std::vector<claimed_invocation> claim(std::size_t max, time_point now) {
    promote_due(now);
    std::vector<claimed_invocation> out;
    while (out.size() < max && !ready_.empty()) {
      const std::string id = ready_.begin()->second;
      out.push_back(hand_out(id, entries_.at(id)));
    }
    return out;
  }

  /// True if a claim at `now` would take something.
  [[nodiscard]] bool work_ready(time_point now) const {
    return !ready_.empty() || (!parked_.empty() && parked_.begin()->first <= now);
  }

  void park(const std::string& id, entry& e, time_point wake_at) {
    e.state = stored_state::parked;
    e.wake_at = wake_at;
    parked_.emplace(wake_at, id);
  }

  void release(const std::string& id, entry& e) {
    e.state = stored_state::ready;
    ready_.emplace(e.order, id);
  }

  /// Releases the invocation `owner` holds, if that lease is still current; false otherwise.
  bool release_if_current(const lease& owner) {
    entry* e = find(owner.invocation);
    if (e == nullptr || e->state != stored_state::running || e->epoch != owner.epoch) return false;
    release(owner.invocation, *e);
    return true;
  }

  /// Removes `id` (it finished, or is forgotten).
  void erase(std::string_view id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return;
    unlist(it->second);
    entries_.erase(it);
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  template <class F>
  void for_each(F f) const {
    for (const auto& [id, e] : entries_) f(id, e);
  }

 private:
  static std::string why_not_current(const entry* e, const lease& owner) {
    if (e == nullptr) return "it has finished, or the store does not hold it";
    if (e->epoch != owner.epoch) return "it was claimed again (epoch " + std::to_string(e->epoch) + ")";
    return "it is " + std::string(to_string(e->state)) + ", not held";
  }

  void promote_due(time_point now) {
    while (!parked_.empty() && parked_.begin()->first <= now) {
      const std::string id = std::move(parked_.begin()->second);
      parked_.erase(parked_.begin());
      entry& e = entries_.at(id);
      e.state = stored_state::ready;
      ready_.emplace(e.order, id);
    }
  }

  // Takes `e` off the ready list and the parked list, wherever it is.
  void unlist(const entry& e) {
    if (e.state == stored_state::ready) {
      ready_.erase(e.order);
    } else if (e.state == stored_state::parked) {
      auto [first, last] = parked_.equal_range(e.wake_at);
      for (auto it = first; it != last; ++it) {
        if (entries_.at(it->second).order == e.order) {
          parked_.erase(it);
          break;
        }
      }
    }
  }

  std::unordered_map<std::string, entry, string_hash, std::equal_to<>> entries_;
  std::map<std::uint64_t, std::string> ready_;       // by creation order
  std::multimap<time_point, std::string> parked_;    // by wake-up time
  std::uint64_t next_order_ = 0;
};

}  // namespace durable::detail
