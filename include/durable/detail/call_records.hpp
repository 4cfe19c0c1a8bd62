// durable/detail/call_records.hpp — the records a journaled invocation's calls and sleeps read
// and write (journal_records.hpp has their encoding, and reads a journal back). Apart, so that
// the calls can be journaled without including the journal.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../clock.hpp"
#include "../error.hpp"
#include "../status.hpp"

namespace durable {

/// The record types the runtime writes (the journal's `type` byte).
enum class journal_record_type : std::uint8_t {
  invocation_started = 1,
  call_completed = 2,
  wait_scheduled = 3,
  invocation_reset = 4,
};

/// Where a call sits in its invocation: its position among its parent's calls and sleeps, and
/// its parent's, up to the invocation's own call ([0]).
using call_path = std::vector<std::uint32_t>;

/// Written before an invocation's code runs.
struct invocation_started_record {
  std::string id{};
  std::string function{};
  std::vector<std::byte> arguments{};  ///< the encoded std::tuple of the decayed arguments
};

/// Written when a call ends, before its caller resumes past it.
struct call_completed_record {
  std::string id{};
  call_path path{};
  std::string function{};
  status code = status::ok;                            ///< ok: `value` holds the encoded result
  failure_reason reason = failure_reason::fatal_status;  ///< for a failure
  std::uint32_t attempts = 0;
  std::string message{};            ///< for a failure: what() of the failure
  std::vector<std::byte> value{};  ///< for a success: the encoded value (std::monostate for void)
};

/// What a wait is for.
enum class wait_kind : std::uint8_t { retry = 1, sleep = 2 };

/// Written when a call schedules a retry, or a task in an invocation starts a sleep.
struct wait_scheduled_record {
  std::string id{};
  call_path path{};
  wait_kind kind = wait_kind::retry;
  std::uint32_t attempt = 0;  ///< for a retry: the attempt that failed
  status last = status::ok;   ///< for a retry: how it failed
  std::int64_t wake_at_ns = 0;  ///< since the epoch of durable::time_point
  /// For a retry of a call with a `max_elapsed`: when its first attempt started (since the
  /// epoch), so that its deadline counts from there after a restart. Empty: not recorded (no
  /// deadline, or a journal written before this field existed: the deadline then counts from
  /// the recovery).
  std::optional<std::int64_t> first_attempt_ns{};

  [[nodiscard]] time_point wake_at() const noexcept { return time_point(std::chrono::nanoseconds(wake_at_ns)); }
};

/// Written when an invocation's recorded progress is forgotten (`incompatible_state`).
struct invocation_reset_record {
  std::string id{};
  std::string reason{};
};

}  // namespace durable
