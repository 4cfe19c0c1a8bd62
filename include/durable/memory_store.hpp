// durable/memory_store.hpp — journaled invocations kept in memory: for tests, and for programs
// that want calls recorded once per invocation (idempotent starts, results by id) without
// surviving a restart.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "codec.hpp"
#include "detail/invocation_table.hpp"
#include "invocation_store.hpp"
#include "journal.hpp"
#include "journal_records.hpp"

namespace durable {

/// An invocation store in memory. Same contract as every store (tests/store_contract_test.cpp);
/// `make_durable` has nothing to do. Each invocation's records are kept by invocation, and a
/// finished one keeps only its outcome.
class memory_store final : public invocation_store {
 public:
  /// `now` is the store's clock, which decides when a parked invocation is due.
  explicit memory_store(std::function<time_point()> now = [] { return time_point(std::chrono::system_clock::now()); })
      : now_(std::move(now)) {}

  start_reply start(std::string_view id, std::string_view function, std::span<const std::byte> started) override {
    check_start(id, function, started);
    std::lock_guard lock(mutex_);
    if (detail::invocation_table::entry* e = table_.find(id)) {
      if (e->state == stored_state::ready) return {table_.hand_out(std::string(id), *e), std::nullopt};
      return {std::nullopt, view_of(id, *e)};
    }
    if (const auto done = finished_.find(id); done != finished_.end()) return {std::nullopt, view_of(done->first, done->second)};
    std::string key(id);
    detail::invocation_table::entry& e = table_.add(key, std::string(function),
                                                   journal_record{started_type, {started.begin(), started.end()}});
    return {table_.hand_out(key, e), std::nullopt};
  }

  std::vector<claimed_invocation> claim(std::size_t max) override {
    const time_point now = now_();
    std::lock_guard lock(mutex_);
    return table_.claim(max, now);
  }

  std::uint64_t append(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    journal::check_append(type, payload);
    std::lock_guard lock(mutex_);
    detail::invocation_table::entry& e = table_.owned(owner, "an append");
    e.records.append(type, payload);
    return e.records.size();
  }

  checkpoint_reply checkpoint(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    journal::check_append(type, payload);
    std::lock_guard lock(mutex_);
    detail::invocation_table::entry& e = table_.owned(owner, "a checkpoint");
    e.records.append(type, payload);
    return {e.cancel_requested, e.records.size()};
  }

  [[nodiscard]] journal_record record(const lease& owner, std::uint64_t seq) const override {
    std::lock_guard lock(mutex_);
    return record_of(table_.owned(owner, "a read"), seq, "memory_store");
  }

  checkpoint_reply make_durable(const lease& owner, std::uint64_t seq) override {
    std::lock_guard lock(mutex_);
    detail::invocation_table::entry& e = table_.owned(owner, "make_durable");
    if (seq > e.records.size())
      throw std::invalid_argument("durable::memory_store::make_durable: seq " + std::to_string(seq) +
                                  " was never returned by append");
    return {e.cancel_requested};
  }

  void finish(const lease& owner, std::uint8_t type, std::span<const std::byte> outcome) override {
    journal::check_append(type, outcome);
    journal_record record{type, {outcome.begin(), outcome.end()}};
    std::lock_guard lock(mutex_);
    detail::invocation_table::entry& e = table_.owned(owner, "finish");
    finished_.insert_or_assign(owner.invocation, finished_entry{std::move(e.function), std::move(record)});
    table_.erase(owner.invocation);
  }

  void park(const lease& owner, time_point wake_at) override {
    {
      std::lock_guard lock(mutex_);
      table_.park(owner.invocation, table_.owned(owner, "park"), wake_at);
    }
    work_.notify_all();
  }

  void release(const lease& owner) override {
    {
      std::lock_guard lock(mutex_);
      if (!table_.release_if_current(owner)) return;
    }
    work_.notify_all();
  }

  [[nodiscard]] std::optional<invocation_view> read(std::string_view id) const override {
    std::lock_guard lock(mutex_);
    if (const detail::invocation_table::entry* e = table_.find(id)) return view_of(id, *e);
    if (const auto done = finished_.find(id); done != finished_.end()) return view_of(done->first, done->second);
    return std::nullopt;
  }

  cancel_reply request_cancel(std::string_view id) override {
    std::lock_guard lock(mutex_);
    detail::invocation_table::entry* e = table_.find(id);
    if (e == nullptr) return finished_.contains(id) ? cancel_reply::finished : cancel_reply::unknown;
    if (e->state == stored_state::running) {
      e->cancel_requested = true;
      return cancel_reply::requested;
    }
    const std::vector<std::byte> outcome =
        encode(cancelled_outcome(std::string(id), e->function, "the invocation was cancelled"));
    finished_.insert_or_assign(std::string(id),
                               finished_entry{std::move(e->function), journal_record{completed_type, outcome}});
    table_.erase(id);
    return cancel_reply::cancelled;
  }

  void wait_for_work(std::chrono::milliseconds at_most) override {
    std::unique_lock lock(mutex_);
    work_.wait_for(lock, at_most, [this] { return table_.work_ready(now_()); });
  }

  std::size_t forget_finished() override {
    std::lock_guard lock(mutex_);
    const std::size_t n = finished_.size();
    finished_.clear();
    return n;
  }

  [[nodiscard]] std::size_t finished_count() const override {
    std::lock_guard lock(mutex_);
    return finished_.size();
  }

 private:
  static constexpr auto started_type = static_cast<std::uint8_t>(journal_record_type::invocation_started);
  static constexpr auto completed_type = static_cast<std::uint8_t>(journal_record_type::call_completed);

  struct finished_entry {
    std::string function;
    journal_record outcome;
  };

  static invocation_view view_of(std::string_view id, const detail::invocation_table::entry& e) {
    return invocation_view{std::string(id), e.function, e.state, std::nullopt, e.cancel_requested};
  }
  static invocation_view view_of(std::string_view id, const finished_entry& e) {
    return invocation_view{std::string(id), e.function, stored_state::finished, e.outcome, false};
  }

  std::function<time_point()> now_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  detail::invocation_table table_;                                                       // under mutex_
  std::unordered_map<std::string, finished_entry, detail::string_hash, std::equal_to<>> finished_;  // under mutex_
};

}  // namespace durable
