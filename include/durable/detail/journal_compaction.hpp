// durable/detail/journal_compaction.hpp — which records a runtime's compactions keep, and when
// the automatic one is due.
//
// Two compactions of a journal_store, both through `journal::compact` (a filter: a file journal
// rewrites the file and renames it into place, so a crash meanwhile loses nothing):
//  - condensing (automatic): a finished invocation keeps its started record and its own call's
//    completion, which is all loading needs to see it finished with its outcome; unfinished
//    invocations keep everything, and so does a record that is not the runtime's.
//  - forgetting (`invocations::compact_journal`): a finished invocation keeps nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "../codec.hpp"
#include "../journal.hpp"
#include "../journal_records.hpp"

namespace durable::detail {

/// The invocation id every record the runtime writes starts with; nullopt for a record that
/// does not decode as one (kept by every compaction: it is not the runtime's to drop).
[[nodiscard]] inline std::optional<std::string> record_invocation_id(const journal_record& r) {
  try {
    byte_reader in(r.payload);
    return codec<std::string>::decode(in);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// True if `r` is an invocation's outcome: the completion of its own call ([0]).
[[nodiscard]] inline bool is_outcome_record(const journal_record& r) {
  if (r.type != static_cast<std::uint8_t>(journal_record_type::call_completed)) return false;
  try {
    byte_reader in(r.payload);
    static_cast<void>(codec<std::string>::decode(in));
    return codec<call_path>::decode(in) == call_path{0};
  } catch (const std::exception&) {
    return false;
  }
}

/// Whether condensing keeps `r`, a record of a finished invocation: its started record and its
/// outcome, all that loading needs to see it finished.
[[nodiscard]] inline bool kept_of_finished_when_condensed(const journal_record& r) {
  return r.type == static_cast<std::uint8_t>(journal_record_type::invocation_started) || is_outcome_record(r);
}

/// When automatic compaction is due: once the journal has handed out `after` lsns since the
/// last compaction, and at least as many as that compaction kept records. The second rule
/// makes the work amortised O(1) per record: a journal of n kept records is rewritten only
/// after n more. Lsns count appends for the journals of this library (one per record).
class compaction_schedule {
 public:
  /// `after` 0: never due.
  explicit compaction_schedule(std::uint64_t after) noexcept : after_(after) {}

  [[nodiscard]] bool due(std::uint64_t last_lsn) const noexcept {
    if (after_ == 0 || last_lsn < since_) return false;
    const std::uint64_t grown = last_lsn - since_;
    return grown >= after_ && grown >= kept_;
  }
  /// A compaction ended (or failed: `kept` is then what the journal still holds, as far as
  /// known, so that a failing store is not retried at every finish) at `last_lsn`.
  void compacted(std::uint64_t last_lsn, std::uint64_t kept) noexcept {
    since_ = last_lsn;
    kept_ = kept;
  }

 private:
  std::uint64_t after_;
  std::uint64_t since_ = 0;
  std::uint64_t kept_ = 0;
};

}  // namespace durable::detail
