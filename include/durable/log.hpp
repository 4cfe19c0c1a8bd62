// durable/log.hpp — a runtime's events as log lines.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "error.hpp"
#include "event.hpp"
#include "status.hpp"

namespace durable {

/// One event as one line (no newline), the runtime's clock in seconds first:
///   `[   0.500s] fetch_profile: attempt 1 failed: TEMPORARY_ERROR: application in maintenance`
///   `[   0.500s] fetch_profile: retry in 0.500s`
///   `[   9.000s] slow: gave up after attempt 2: PERMANENT_ERROR (cancelled): ...`
/// A failure says its status, then why when there is a reason (see `event::reason`), then its
/// message; a retry-after hint is named. An unnamed call shows as `(unnamed)`.
[[nodiscard]] inline std::string format_event(const event& e) {
  using std::chrono::duration;
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "[%8.3fs] ", duration<double>(e.time.time_since_epoch()).count());
  std::string line = stamp;
  line += e.function_name.empty() ? std::string_view("(unnamed)") : e.function_name;
  line += ": ";
  const auto failure_text = [&line, &e] {
    line += to_string(e.code);
    if (e.reason) {
      line += " (";
      line += to_string(*e.reason);
      line += ')';
    }
    if (!e.message.empty()) {
      line += ": ";
      line += e.message;
    }
  };
  switch (e.kind) {
    case event_kind::attempt_started:
      line += "attempt " + std::to_string(e.attempt);
      break;
    case event_kind::attempt_failed:
      line += "attempt " + std::to_string(e.attempt) + " failed: ";
      failure_text();
      break;
    case event_kind::retry_scheduled: {
      char delay[40];
      std::snprintf(delay, sizeof delay, "%.3fs", duration<double>(e.delay).count());
      line += "retry in ";
      line += delay;
      if (e.retry_after) line += " (as the failure's retry-after hint asked)";
      break;
    }
    case event_kind::succeeded:
      line += "succeeded on attempt " + std::to_string(e.attempt);
      break;
    case event_kind::failed:
      line += "gave up after attempt " + std::to_string(e.attempt) + ": ";
      failure_text();
      break;
    case event_kind::restarted:
      line += "the code changed: starting again from scratch";
      break;
    case event_kind::records_skipped:
    case event_kind::journal_compacted:
    case event_kind::compaction_failed:
      line += e.message;
      break;
  }
  return line;
}

/// A callback for `runtime::on_event` that writes every event to `out` as one line
/// (`format_event`). Lines from several worker threads never interleave. `out` must outlive
/// the runtime.
[[nodiscard]] inline std::function<void(const event&)> log_events_to(std::ostream& out) {
  return [&out, lock = std::make_shared<std::mutex>()](const event& e) {
    const std::string line = format_event(e) + '\n';
    const std::lock_guard held(*lock);
    out << line << std::flush;
  };
}

/// `log_events_to` for a C stream (`stdout`, `stderr`, an open file).
[[nodiscard]] inline std::function<void(const event&)> log_events_to(std::FILE* out) {
  return [out](const event& e) {
    const std::string line = format_event(e) + '\n';
    std::fputs(line.c_str(), out);  // one call per line: the stream's own lock keeps it whole
  };
}

}  // namespace durable
