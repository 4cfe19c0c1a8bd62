// Helpers of the store contract (tests/store_contract.hpp): a store clock moved by hand, and
// the encoded records the contract writes.
#pragma once

#include <durable/clock.hpp>
#include <durable/codec.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace store_contract {

using namespace std::chrono_literals;

inline constexpr auto started_type = static_cast<std::uint8_t>(durable::journal_record_type::invocation_started);
inline constexpr auto completed_type = static_cast<std::uint8_t>(durable::journal_record_type::call_completed);
inline constexpr auto wait_type = static_cast<std::uint8_t>(durable::journal_record_type::wait_scheduled);

// The store's clock, moved by hand.
struct test_clock {
  durable::manual_clock clock{durable::time_point(std::chrono::hours(1000))};
  [[nodiscard]] auto now_function() {
    return [this] { return clock.now(); };
  }
};

inline std::vector<std::byte> started_bytes(const std::string& id, const std::string& function = "flow") {
  return durable::encode(durable::invocation_started_record{id, function, durable::encode(std::int64_t{7})});
}

inline std::vector<std::byte> completion_bytes(const std::string& id, durable::call_path path, std::int64_t value) {
  durable::call_completed_record r{id, std::move(path), "step"};
  r.attempts = 1;
  r.value = durable::encode(value);
  return durable::encode(r);
}

inline std::vector<std::byte> outcome_bytes(const std::string& id, std::int64_t value) {
  durable::call_completed_record r{id, durable::call_path{0}, "flow"};
  r.attempts = 1;
  r.value = durable::encode(value);
  return durable::encode(r);
}

inline durable::call_completed_record decoded(const durable::journal_record& r) {
  return durable::decode<durable::call_completed_record>(r.payload);
}

}  // namespace store_contract
