// durable/detail/call_records.hpp — the records written about a journaled invocation's calls and
// sleeps (journal_records.hpp has their encoding, and reads a journal back). Apart, so that
// the scopes of running code (invocation_scope.hpp) need the records but not the journal. The
// invocation layer's: calls, sleeps and fan-outs never see a record (journal_scope.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../clock.hpp"
#include "../codec.hpp"
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

/// A call path, borrowed.
using path_view = std::span<const std::uint32_t>;

/// `path` as a path_view. Spelled as pointer and size: std::span's constructor from a range
/// costs g++ its ranges concept checks, some 70M instructions, the first time a program uses it
/// (benchmarks/include_cost.py; issue 15).
[[nodiscard]] inline path_view view_of(const call_path& path) noexcept { return {path.data(), path.size()}; }

/// Orders call paths (lexicographically, as std::vector does), a vector against a view too.
struct path_less {
  using is_transparent = void;
  [[nodiscard]] bool operator()(path_view a, path_view b) const noexcept {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  }
};

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

namespace detail {

/// Writes a call_completed_record's bytes from borrowed fields, the value already encoded:
/// what invocation_scope journals for a call without copying its path or encoding its value
/// twice. The layout is the record's codec (journal_records.hpp encodes through this too, and a
/// test holds it to the field-by-field codec): id, path, function, code, reason, attempts,
/// message, value. Strings and vectors are a varint count and their elements; uint32s are
/// varints; the one-byte enums and std::byte are one raw byte each. Written through one raw span, not byte by byte.
inline void write_call_completed(byte_writer& out, std::string_view id, path_view path, std::string_view function,
                                 status code, failure_reason reason, std::uint32_t attempts, std::string_view message,
                                 std::span<const std::byte> value) {
  static_assert(sizeof(status) == 1 && sizeof(failure_reason) == 1 && sizeof(std::byte) == 1);
  constexpr std::size_t varint_max = 10;  // six varints: four lengths, the path count, attempts
  const std::size_t at_most = 6 * varint_max + path.size() * 5 + id.size() + function.size() + message.size() +
                              value.size() + 2;
  std::byte* p = out.begin_raw(at_most);
  const auto put_varint = [&p](std::uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<std::byte>(static_cast<unsigned char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    *p++ = static_cast<std::byte>(static_cast<unsigned char>(v));
  };
  const auto put_bytes = [&p, &put_varint](const void* data, std::size_t n) {
    put_varint(n);
    if (n != 0) std::memcpy(p, data, n);
    p += n;
  };
  put_bytes(id.data(), id.size());
  put_varint(path.size());
  for (const std::uint32_t step : path) put_varint(step);
  put_bytes(function.data(), function.size());
  *p++ = static_cast<std::byte>(code);
  *p++ = static_cast<std::byte>(reason);
  put_varint(attempts);
  put_bytes(message.data(), message.size());
  put_bytes(value.data(), value.size());
  out.end_raw(p);
}

}  // namespace detail

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
