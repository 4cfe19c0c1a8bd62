// durable/journal_records.hpp — what the runtime writes to a journal, and reading it back.
//
// A journal holds four kinds of records, each encoded with durable::codec (journal record
// type numbers are stable: they are in files):
//   1 invocation_started  an invocation's id, function and encoded arguments, before it runs
//   2 call_completed      a call's outcome (value or failure), before its caller resumes
//   3 wait_scheduled      a call's retry wait or a sleep, as an absolute wake-up time
//   4 invocation_reset    the code no longer matched the journal: progress forgotten
// A call is named by its invocation id and its path: the positions of it and its ancestors
// among their parents' calls and sleeps ([0] is the invocation's own call).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "clock.hpp"
#include "codec.hpp"
#include "error.hpp"
#include "journal.hpp"
#include "status.hpp"
#include "detail/call_records.hpp"

template <>
struct durable::codec<durable::invocation_started_record>
    : durable::fields<&durable::invocation_started_record::id, &durable::invocation_started_record::function,
                      &durable::invocation_started_record::arguments> {};
/// Encoded through `detail::write_call_completed`, which `invocation_scope` also uses directly
/// for a call's completion; the layout
/// is that of `layout` (a test holds them equal).
template <>
struct durable::codec<durable::call_completed_record> {
  using layout = durable::fields<&durable::call_completed_record::id, &durable::call_completed_record::path,
                                 &durable::call_completed_record::function, &durable::call_completed_record::code,
                                 &durable::call_completed_record::reason, &durable::call_completed_record::attempts,
                                 &durable::call_completed_record::message, &durable::call_completed_record::value>;
  static void encode(const durable::call_completed_record& r, durable::byte_writer& out) {
    durable::detail::write_call_completed(out, r.id, r.path, r.function, r.code, r.reason, r.attempts, r.message,
                                          r.value);
  }
  static durable::call_completed_record decode(durable::byte_reader& in) { return layout::decode(in); }
  static constexpr std::size_t min_encoded_size() { return layout::min_encoded_size(); }
};
/// `first_attempt_ns` is written last, and only when it is set: a record without it is the one
/// journals held before it existed, and decodes with it empty (so old journals still recover).
template <>
struct durable::codec<durable::wait_scheduled_record> {
  using recorded_before = durable::fields<&durable::wait_scheduled_record::id, &durable::wait_scheduled_record::path,
                                          &durable::wait_scheduled_record::kind, &durable::wait_scheduled_record::attempt,
                                          &durable::wait_scheduled_record::last,
                                          &durable::wait_scheduled_record::wake_at_ns>;
  static void encode(const durable::wait_scheduled_record& value, durable::byte_writer& out) {
    recorded_before::encode(value, out);
    if (value.first_attempt_ns) durable::codec<std::int64_t>::encode(*value.first_attempt_ns, out);
  }
  static durable::wait_scheduled_record decode(durable::byte_reader& in) {
    durable::wait_scheduled_record value = recorded_before::decode(in);
    if (in.remaining() != 0) value.first_attempt_ns = durable::codec<std::int64_t>::decode(in);
    return value;
  }
  static constexpr std::size_t min_encoded_size() { return recorded_before::min_encoded_size(); }
};
template <>
struct durable::codec<durable::invocation_reset_record>
    : durable::fields<&durable::invocation_reset_record::id, &durable::invocation_reset_record::reason> {};

namespace durable {

/// The outcome of an invocation cancelled before it finished: its own call ([0]) completed as
/// cancelled. Written by `invocations::cancel` and by a store cancelling an invocation nobody
/// runs, so that after a restart it stays cancelled.
[[nodiscard]] inline call_completed_record cancelled_outcome(std::string id, std::string function,
                                                             std::string message) {
  call_completed_record r{std::move(id), call_path{0}, std::move(function)};
  r.code = status::permanent_error;
  r.reason = failure_reason::cancelled;
  r.attempts = 1;
  r.message = std::move(message);
  return r;
}

/// Where an invocation stands, according to its journal.
enum class invocation_state : std::uint8_t {
  running,    ///< started, not finished (after a crash: to be recovered)
  succeeded,  ///< its call completed with a value
  failed,     ///< its call gave up
};

[[nodiscard]] constexpr std::string_view to_string(invocation_state s) noexcept {
  switch (s) {
    case invocation_state::running: return "running";
    case invocation_state::succeeded: return "succeeded";
    case invocation_state::failed: return "failed";
  }
  return "unknown";
}

/// One invocation, as the journal tells it (since its last reset, if any).
struct invocation_summary {
  invocation_started_record started;
  invocation_state state = invocation_state::running;
  /// Completed calls, by path (the invocation's own call is [0]).
  std::map<call_path, call_completed_record> completed;
  /// The latest wait of each call or sleep, by path.
  std::map<call_path, wait_scheduled_record> waits;
  std::uint32_t resets = 0;

  /// The invocation's own call's completion, if it finished.
  [[nodiscard]] const call_completed_record* outcome() const {
    const auto it = completed.find(call_path{0});
    return it == completed.end() ? nullptr : &it->second;
  }
  /// Attempts of its own call so far: recorded at completion, else the retries waited for + 1.
  [[nodiscard]] std::uint32_t attempts() const {
    if (const auto* done = outcome()) return done->attempts;
    const auto it = waits.find(call_path{0});
    if (it == waits.end()) return 1;
    return it->second.attempt + (it->second.attempt != std::numeric_limits<std::uint32_t>::max() ? 1 : 0);
  }
  /// The status its own call last failed with (ok if it never failed).
  [[nodiscard]] status last_status() const {
    if (const auto* done = outcome()) return done->code;
    const auto it = waits.find(call_path{0});
    return it == waits.end() ? status::ok : it->second.last;
  }
  /// The earliest wake-up among its pending waits (calls not completed yet), if any.
  [[nodiscard]] std::optional<time_point> next_wake_up() const {
    if (state != invocation_state::running) return std::nullopt;
    std::optional<time_point> next;
    for (const auto& [path, wait] : waits) {
      if (completed.contains(path)) continue;
      if (!next || wait.wake_at() < *next) next = wait.wake_at();
    }
    return next;
  }
};

/// Every invocation of a journal's records, by id, in the order they were started.
struct journal_summary {
  std::vector<std::string> order;
  std::map<std::string, invocation_summary> invocations;
  /// Records of a type this version does not know (skipped).
  std::size_t unknown_records = 0;
  /// Records about an invocation the journal never started (or no longer holds: what an
  /// attempt left after its invocation was compacted away), skipped: how many, by id.
  std::map<std::string, std::size_t> orphan_records;
};

/// Reads the runtime's records. A record that does not decode is a `decode_error`; a record
/// about an invocation that was never started is skipped and counted (`orphan_records`).
[[nodiscard]] inline journal_summary summarize(std::span<const journal_record> records) {
  journal_summary out;
  auto find = [&out](const std::string& id) -> invocation_summary* {
    const auto it = out.invocations.find(id);
    if (it == out.invocations.end()) {
      ++out.orphan_records[id];
      return nullptr;
    }
    return &it->second;
  };
  for (const journal_record& r : records) {
    switch (static_cast<journal_record_type>(r.type)) {
      case journal_record_type::invocation_started: {
        auto started = decode<invocation_started_record>(r.payload);
        if (!out.invocations.contains(started.id)) out.order.push_back(started.id);
        invocation_summary& s = out.invocations[started.id];
        s.started = std::move(started);
        break;
      }
      case journal_record_type::call_completed: {
        auto done = decode<call_completed_record>(r.payload);
        invocation_summary* s = find(done.id);
        if (s == nullptr) break;
        if (done.path == call_path{0}) {
          s->state = done.code == status::ok ? invocation_state::succeeded : invocation_state::failed;
        }
        s->completed[done.path] = std::move(done);
        break;
      }
      case journal_record_type::wait_scheduled: {
        auto wait = decode<wait_scheduled_record>(r.payload);
        invocation_summary* s = find(wait.id);
        if (s == nullptr) break;
        s->waits[wait.path] = std::move(wait);
        break;
      }
      case journal_record_type::invocation_reset: {
        const auto reset = decode<invocation_reset_record>(r.payload);
        invocation_summary* s = find(reset.id);
        if (s == nullptr) break;
        s->completed.clear();
        s->waits.clear();
        s->state = invocation_state::running;
        ++s->resets;
        break;
      }
      default:
        ++out.unknown_records;
        break;
    }
  }
  return out;
}

}  // namespace durable
