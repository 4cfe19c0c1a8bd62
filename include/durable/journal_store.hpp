// durable/journal_store.hpp — journaled invocations kept in one ordered log: a `journal` (a
// file_journal, or a memory_journal) seen as an invocation store.
//
// The log holds the records of every invocation in the order they were written (the format
// of journal_records.hpp, unchanged since 0.1.0). Loading reads it once: the unfinished
// invocations keep their records in memory, to be claimed; of a finished one only a hash of its
// id and the position of its outcome record are kept (16 bytes), and its outcome is read back
// from the log when someone asks. One process holds a file journal (its lock is the lease), so
// epochs start again at each load and only fence the holders inside this process.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "codec.hpp"
#include "detail/hash_index.hpp"
#include "detail/invocation_table.hpp"
#include "detail/journal_compaction.hpp"
#include "invocation_store.hpp"
#include "journal.hpp"
#include "journal_records.hpp"

namespace durable {

/// How a journal store keeps its journal.
struct journal_store_options {
  /// Automatic compaction (condensing), run by `housekeeping` once the journal has grown by this
  /// many records since the last compaction (and by at least as many as that one kept): every
  /// finished invocation keeps only its started record and its outcome; unfinished ones keep
  /// everything. 0 turns it off.
  std::uint64_t compact_after_records = 100'000;
  /// The store's clock: it decides when a parked invocation is due.
  std::function<time_point()> now = [] { return time_point(std::chrono::system_clock::now()); };
};

/// An invocation store over a journal. It must be the journal's only writer while it exists
/// (positions in the log are counted by it). The journal is read at the first call, not at
/// construction.
class journal_store final : public invocation_store {
 public:
  explicit journal_store(journal& log, journal_store_options options = {})
      : log_(&log), now_(std::move(options.now)), compaction_(options.compact_after_records) {}

  start_reply start(std::string_view id, std::string_view function, std::span<const std::byte> started) override {
    check_start(id, function, started);
    std::uint64_t lsn = 0;
    start_reply reply;
    {
      std::lock_guard lock(mutex_);
      load_locked();
      if (detail::invocation_table::entry* e = table_.find(id)) {
        if (e->state == stored_state::ready) return {table_.hand_out(std::string(id), *e), std::nullopt};
        return {std::nullopt, view_of(id, *e)};
      }
      if (auto done = finished_view_locked(id)) return {std::nullopt, std::move(done)};
      lsn = append_locked(started_type, started);
      std::string key(id);
      detail::invocation_table::entry& e =
          table_.add(key, std::string(function), journal_record{started_type, {started.begin(), started.end()}});
      e.last_lsn = lsn;
      reply.claimed = table_.hand_out(key, e);
    }
    try {
      log_->make_durable(lsn);
    } catch (...) {
      release(reply.claimed->owner);  // nobody runs it: a later start or claim may take it
      throw;
    }
    return reply;
  }

  std::vector<claimed_invocation> claim(std::size_t max) override {
    const time_point now = now_();
    std::lock_guard lock(mutex_);
    load_locked();
    return table_.claim(max, now);
  }

  std::uint64_t append(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    journal::check_append(type, payload);
    std::lock_guard lock(mutex_);
    load_locked();
    detail::invocation_table::entry& e = table_.owned(owner, "an append");
    e.last_lsn = append_locked(type, payload);
    e.records.append(type, payload);
    return e.records.size();
  }

  checkpoint_reply checkpoint(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    journal::check_append(type, payload);
    std::uint64_t lsn = 0;
    checkpoint_reply reply;
    {
      std::lock_guard lock(mutex_);
      load_locked();
      detail::invocation_table::entry& e = table_.owned(owner, "a checkpoint");
      lsn = append_locked(type, payload);
      e.last_lsn = lsn;
      e.records.append(type, payload);
      reply.cancel_requested = e.cancel_requested;
      reply.seq = e.records.size();
    }
    log_->make_durable(lsn);
    return reply;
  }

  [[nodiscard]] journal_record record(const lease& owner, std::uint64_t seq) const override {
    std::lock_guard lock(mutex_);
    load_locked();
    return record_of(table_.owned(owner, "a read"), seq, "journal_store");
  }

  checkpoint_reply make_durable(const lease& owner, std::uint64_t seq) override {
    std::uint64_t lsn = 0;
    checkpoint_reply reply;
    {
      std::lock_guard lock(mutex_);
      load_locked();
      const detail::invocation_table::entry& e = table_.owned(owner, "make_durable");
      if (seq > e.records.size())
        throw std::invalid_argument("durable::journal_store::make_durable: seq " + std::to_string(seq) +
                                    " was never returned by append");
      lsn = e.last_lsn;  // covers `seq`: the log is made durable in order
      reply.cancel_requested = e.cancel_requested;
    }
    log_->make_durable(lsn);
    return reply;
  }

  void finish(const lease& owner, std::uint8_t type, std::span<const std::byte> outcome) override {
    journal::check_append(type, outcome);
    std::uint64_t lsn = 0;
    {
      std::lock_guard lock(mutex_);
      load_locked();
      static_cast<void>(table_.owned(owner, "finish"));
      lsn = append_locked(type, outcome);
      index_.insert(detail::hash_index::hash_of(owner.invocation), positions_ - 1);
      table_.erase(owner.invocation);
    }
    log_->make_durable(lsn);
  }

  void park(const lease& owner, time_point wake_at) override {
    std::uint64_t lsn = 0;
    {
      std::lock_guard lock(mutex_);
      load_locked();
      detail::invocation_table::entry& e = table_.owned(owner, "park");
      lsn = e.last_lsn;
      table_.park(owner.invocation, e, wake_at);
    }
    log_->make_durable(lsn);
    work_.notify_all();
  }

  void release(const lease& owner) override {
    {
      std::lock_guard lock(mutex_);
      load_locked();
      if (!table_.release_if_current(owner)) return;
    }
    work_.notify_all();
  }

  [[nodiscard]] std::optional<invocation_view> read(std::string_view id) const override {
    std::lock_guard lock(mutex_);
    load_locked();
    if (const detail::invocation_table::entry* e = table_.find(id)) return view_of(id, *e);
    return finished_view_locked(id);
  }

  cancel_reply request_cancel(std::string_view id) override {
    std::uint64_t lsn = 0;
    {
      std::lock_guard lock(mutex_);
      load_locked();
      detail::invocation_table::entry* e = table_.find(id);
      if (e == nullptr) return finished_view_locked(id) ? cancel_reply::finished : cancel_reply::unknown;
      if (e->state == stored_state::running) {
        e->cancel_requested = true;  // its holder, in this process, ends it at its next checkpoint
        return cancel_reply::requested;
      }
      const std::vector<std::byte> outcome =
          encode(cancelled_outcome(std::string(id), e->function, "the invocation was cancelled"));
      lsn = append_locked(completed_type, outcome);
      index_.insert(detail::hash_index::hash_of(id), positions_ - 1);
      table_.erase(id);
    }
    log_->make_durable(lsn);
    return cancel_reply::cancelled;
  }

  void wait_for_work(std::chrono::milliseconds at_most) override {
    std::unique_lock lock(mutex_);
    load_locked();
    work_.wait_for(lock, at_most, [this] { return table_.work_ready(now_()); });
  }

  std::size_t forget_finished() override {
    std::lock_guard lock(mutex_);
    load_locked();
    const std::size_t forgotten = index_.size();
    log_->compact([this](const journal_record& r) { return !finished_record_locked(r); });
    reindex_locked();
    compaction_.compacted(log_->last_lsn(), positions_);
    return forgotten;
  }

  [[nodiscard]] std::size_t finished_count() const override {
    std::lock_guard lock(mutex_);
    load_locked();
    return index_.size();
  }

  std::optional<std::string> housekeeping() override {
    std::unique_lock lock(mutex_);
    load_locked();
    if (!compaction_.due(log_->last_lsn())) return std::nullopt;
    try {
      log_->compact([this](const journal_record& r) {
        return !finished_record_locked(r) || detail::kept_of_finished_when_condensed(r);
      });
      reindex_locked();
    } catch (...) {
      std::uint64_t last = 0;
      try {
        last = log_->last_lsn();
      } catch (...) {
      }
      compaction_.compacted(last, std::max<std::uint64_t>(last, 1));  // try again once it has doubled
      throw;
    }
    compaction_.compacted(log_->last_lsn(), positions_);
    return "condensed the journal: " + std::to_string(positions_) + " records kept";
  }

  [[nodiscard]] std::vector<std::pair<std::string, std::size_t>> skipped_records() const override {
    std::lock_guard lock(mutex_);
    load_locked();
    return {orphans_.begin(), orphans_.end()};
  }

  /// The journal it keeps its invocations in.
  [[nodiscard]] journal& log() const noexcept { return *log_; }

 private:
  static constexpr auto started_type = static_cast<std::uint8_t>(journal_record_type::invocation_started);
  static constexpr auto completed_type = static_cast<std::uint8_t>(journal_record_type::call_completed);

  static invocation_view view_of(std::string_view id, const detail::invocation_table::entry& e) {
    return invocation_view{std::string(id), e.function, e.state, std::nullopt, e.cancel_requested};
  }

  // Appends to the log and counts the position; returns the lsn.
  std::uint64_t append_locked(std::uint8_t type, std::span<const std::byte> payload) const {
    const std::uint64_t lsn = log_->append(type, payload);
    ++positions_;
    return lsn;
  }

  // The outcome of finished invocation `id`, read back from the log.
  [[nodiscard]] std::optional<invocation_view> finished_view_locked(std::string_view id) const {
    std::optional<invocation_view> found;
    index_.find(detail::hash_index::hash_of(id), [&](std::uint64_t position) {
      journal_record r = log_->read(position);
      if (detail::record_invocation_id(r) != id) return false;  // another id with the same hash
      const auto outcome = decode<call_completed_record>(r.payload);
      found = invocation_view{std::string(id), outcome.function, stored_state::finished, std::move(r), false};
      return true;
    });
    return found;
  }

  // True if `r` is about a finished invocation (one the table does not hold, whose id hash is
  // in the index: an orphan of another id sharing that hash counts too, which only drops
  // records nothing would read).
  [[nodiscard]] bool finished_record_locked(const journal_record& r) const {
    const auto id = detail::record_invocation_id(r);
    if (!id || table_.find(*id) != nullptr) return false;
    return index_.may_contain(detail::hash_index::hash_of(*id));
  }

  // After a compaction: positions changed, so the outcomes are found again.
  void reindex_locked() {
    index_.clear();
    positions_ = 0;
    log_->visit([this](std::uint64_t position, const journal_record& r) {
      positions_ = position + 1;
      if (r.type != completed_type || !detail::is_outcome_record(r)) return;
      const auto id = detail::record_invocation_id(r);
      if (id && table_.find(*id) == nullptr) index_.insert(detail::hash_index::hash_of(*id), position);
    });
  }

  // Reads the log once (at the first call): unfinished invocations into the table, finished
  // ones into the index. Their ids are kept only while loading, to tell a finished id from
  // another sharing its hash.
  void load_locked() const {
    if (loaded_) return;
    detail::invocation_table table;
    detail::hash_index index;
    std::unordered_set<std::string, detail::string_hash, std::equal_to<>> finished;
    std::map<std::string, std::size_t> orphans;
    std::uint64_t positions = 0;
    log_->visit([&](std::uint64_t position, const journal_record& r) {
      positions = position + 1;
      if (r.type == started_type) {
        auto started = decode<invocation_started_record>(r.payload);
        // Started again while unfinished, or after it finished: the first start counts.
        if (table.find(started.id) != nullptr || finished.contains(started.id)) return;
        std::string id = started.id;
        table.add(std::move(id), std::move(started.function), r);
        return;
      }
      auto id = detail::record_invocation_id(r);
      if (!id) return;  // not the runtime's record: nothing to attribute
      if (detail::invocation_table::entry* e = table.find(*id)) {
        if (r.type == completed_type && detail::is_outcome_record(r)) {
          index.insert(detail::hash_index::hash_of(*id), position);
          table.erase(*id);
          finished.insert(std::move(*id));
          return;
        }
        e->records.append(r);
        return;
      }
      if (!finished.contains(*id)) ++orphans[*id];  // a finished one's late records are just ignored
    });
    table_ = std::move(table);
    index_ = std::move(index);
    orphans_ = std::move(orphans);
    positions_ = positions;
    loaded_ = true;
  }

  journal* log_;
  std::function<time_point()> now_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  // Under mutex_; mutable because the first call, whatever it is, loads them.
  mutable bool loaded_ = false;
  mutable detail::invocation_table table_;
  mutable detail::hash_index index_;
  mutable std::map<std::string, std::size_t> orphans_;
  mutable std::uint64_t positions_ = 0;  // records in the log
  detail::compaction_schedule compaction_;
};

}  // namespace durable
