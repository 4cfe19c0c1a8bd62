// durable/detail/finished_invocations.hpp — what a runtime keeps of each finished journaled
// invocation: what `start` of its id returns, and nothing of what it recorded on the way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../journal_records.hpp"
#include "../status.hpp"

namespace durable::detail {

/// Finished invocations by id. Not thread-safe: the runtime guards it with its lock. Each entry
/// is about 140 bytes plus its id (beyond 15 characters) and its encoded result; the function
/// name is shared by every invocation of it.
class finished_invocations {
 public:
  /// One finished invocation: its outcome, without its id, path or arguments.
  struct entry {
    const std::string* function;  // into names_
    std::vector<std::byte> value;
    std::string message;
    std::uint32_t attempts;
    status code;
    failure_reason reason;
    /// Its outcome is in the journal (not lost to a journal failure), so compaction may keep
    /// just that and its started record.
    bool journaled;
  };

  /// Records the outcome of invocation `outcome.id` (replacing any earlier one).
  void add(const call_completed_record& outcome, bool journaled) {
    const std::string& function = *names_.insert(outcome.function).first;
    entries_.insert_or_assign(outcome.id, entry{&function, outcome.value, outcome.message, outcome.attempts,
                                                outcome.code, outcome.reason, journaled});
  }

  /// The entry of `id`, or null.
  [[nodiscard]] const entry* find(std::string_view id) const {
    const auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
  }

  /// The outcome of `id` as its root call's completion record, as it was journaled.
  [[nodiscard]] static call_completed_record outcome(std::string_view id, const entry& e) {
    call_completed_record r{std::string(id), call_path{0}, *e.function};
    r.code = e.code;
    r.reason = e.reason;
    r.attempts = e.attempts;
    r.message = e.message;
    r.value = e.value;
    return r;
  }

  /// Ids whose outcome is journaled, sorted. The views stay valid until `erase` removes them.
  [[nodiscard]] std::vector<std::string_view> journaled_ids() const {
    std::vector<std::string_view> ids;
    ids.reserve(entries_.size());
    for (const auto& [id, e] : entries_)
      if (e.journaled) ids.push_back(id);
    return ids;
  }

  /// Every id, sorted.
  [[nodiscard]] std::vector<std::string> ids() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [id, e] : entries_) out.push_back(id);
    return out;
  }

  void erase(std::string_view id) {
    if (const auto it = entries_.find(id); it != entries_.end()) entries_.erase(it);
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  std::set<std::string, std::less<>> names_;
  std::map<std::string, entry, std::less<>> entries_;
};

}  // namespace durable::detail
