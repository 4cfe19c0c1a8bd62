// durable/event.hpp — what a runtime reports about the calls it runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string_view>

#include "clock.hpp"
#include "error.hpp"
#include "status.hpp"

namespace durable {

/// What happened to a call.
enum class event_kind : std::uint8_t {
  attempt_started,  ///< attempt `attempt` begins
  attempt_failed,   ///< attempt `attempt` ended with failure `code`
  retry_scheduled,  ///< after attempt `attempt` failed with `code`, the next one starts after `delay`
  succeeded,        ///< attempt `attempt` produced the call's value
  failed,           ///< the call gave up after attempt `attempt`, with final status `code`
  restarted,        ///< a journaled invocation's code no longer matched its journal (`code` is
                    ///< incompatible_state): its progress was forgotten and it starts again
  records_skipped,  ///< `recover` skipped the journal's records about an invocation it never
                    ///< started (`function_name` is that invocation's id; `message` says how many)
  journal_compacted,   ///< automatic compaction condensed the journal (`message` says how much is kept)
  compaction_failed,   ///< automatic compaction failed and changed nothing (`message` says why;
                       ///< `reason` is journal_failed); it is tried again once the journal has doubled
};

/// A short name for an event kind ("retry_scheduled").
[[nodiscard]] constexpr std::string_view to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::attempt_started: return "attempt_started";
    case event_kind::attempt_failed: return "attempt_failed";
    case event_kind::retry_scheduled: return "retry_scheduled";
    case event_kind::succeeded: return "succeeded";
    case event_kind::failed: return "failed";
    case event_kind::restarted: return "restarted";
    case event_kind::records_skipped: return "records_skipped";
    case event_kind::journal_compacted: return "journal_compacted";
    case event_kind::compaction_failed: return "compaction_failed";
  }
  return "unknown";
}

/// One observation, delivered to the callbacks given to `runtime::on_event`.
struct event {
  event_kind kind;
  /// The durable function's name; empty for an unnamed call.
  std::string_view function_name;
  /// The attempt this event is about (1 for the first).
  std::uint32_t attempt;
  /// `ok` for attempt_started and succeeded; the failure's status otherwise.
  status code;
  /// For retry_scheduled: the delay chosen before the next attempt; zero otherwise.
  std::chrono::nanoseconds delay;
  /// The runtime's clock when it happened.
  time_point time;
  /// For failed: why the call gave up. For attempt_failed: `cancelled` (a stop ended it),
  /// `attempt_timeout` (it ran past its timeout), or, when the call gives up after it, why;
  /// empty when the call retries. Empty for the other kinds. Tells a cancellation from a real
  /// permanent error, which have the same `code`.
  std::optional<failure_reason> reason{};
  /// For attempt_failed and failed: what went wrong, as the exception's `what()` or the `fail`
  /// text. Valid only during the callback: copy it to keep it.
  std::string_view message{};
  /// For attempt_failed and retry_scheduled: the retry-after hint the failure gave, if any.
  std::optional<std::chrono::nanoseconds> retry_after{};
};

inline std::ostream& operator<<(std::ostream& out, event_kind k) { return out << to_string(k); }

}  // namespace durable
