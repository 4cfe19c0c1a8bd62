// durable/invocation_store.hpp — what journaled invocations are kept in: a store per invocation.
//
// Journaled invocations (invocations.hpp) talk to their store only through `invocation_store`,
// so that the embedded stores (memory_store, journal_store over a file_journal) and a database
// shared by many worker processes stand behind them alike. The store keeps, for each invocation
// id, its started record, the records written while it ran (in order, numbered by `seq`), its
// state, and who may write to it: the holder of its current `lease`. Every write names the lease
// it is made under, and a write under a lease that is no longer current stores nothing and
// throws `ownership_lost` (fencing): an invocation has one writer at a time, as far as the store
// is concerned.
//
// Records are opaque to this interface: a type (1..255, as for `journal`) and codec bytes. The
// stores of this library read the started record and the outcome (journal_records.hpp), which
// starts with the invocation id.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "journal.hpp"

namespace durable {

/// The right to write an invocation's records, handed out by `start` and `claim`. `epoch` grows
/// by one at every claim of the invocation, so an older holder's writes are refused.
struct lease {
  std::string invocation;
  std::uint64_t epoch = 0;

  friend bool operator==(const lease&, const lease&) = default;
};

/// A write under a lease that is no longer current: the invocation was claimed by another
/// worker (this one's lease expired), released, or finished. Nothing was stored. For the
/// invocation it is final: the worker stops running it and writes nothing more for it.
class ownership_lost : public journal_error {
 public:
  explicit ownership_lost(const std::string& message) : journal_error(message) {}
};

/// Where an invocation stands in its store.
enum class stored_state : std::uint8_t {
  ready,     ///< unfinished and nobody holds it: the next `claim` may take it
  running,   ///< a lease holder runs it
  parked,    ///< waiting for its wake-up time; ready once that has come
  finished,  ///< it has its outcome
};

[[nodiscard]] constexpr std::string_view to_string(stored_state s) noexcept {
  switch (s) {
    case stored_state::ready: return "ready";
    case stored_state::running: return "running";
    case stored_state::parked: return "parked";
    case stored_state::finished: return "finished";
  }
  return "unknown";
}

/// An invocation handed to its new lease holder: everything needed to resume it.
struct claimed_invocation {
  lease owner;
  /// Its started record (type 1).
  journal_record started;
  /// Every record written for it since, in the order written (their seqs are 1, 2, ...).
  std::vector<journal_record> records;
  /// A cancel was requested (`request_cancel`): the holder ends it as cancelled without
  /// running it.
  bool cancel_requested = false;
};

/// What a store holds about one invocation, as `read` returns it.
struct invocation_view {
  std::string id;
  std::string function;
  stored_state state = stored_state::ready;
  /// Its outcome record (the completion of its own call) once it has finished.
  std::optional<journal_record> outcome;
  bool cancel_requested = false;
};

/// What `start` did.
struct start_reply {
  /// The caller holds the invocation now and runs it: it was created by this call (then
  /// `records` is empty), or it existed unfinished and nobody held it.
  std::optional<claimed_invocation> claimed;
  /// Otherwise: what exists under the id (finished, or held by another worker).
  std::optional<invocation_view> existing;
};

/// What a lease holder learns when its records become durable.
struct checkpoint_reply {
  /// Someone asked to cancel the invocation: the holder should end it as cancelled.
  bool cancel_requested = false;
  /// The seq of the record a `checkpoint` appended (0 from `make_durable`).
  std::uint64_t seq = 0;
};

/// What `request_cancel` found.
enum class cancel_reply : std::uint8_t {
  unknown,    ///< no invocation has that id
  finished,   ///< it had finished already: nothing changed
  cancelled,  ///< nobody held it: it is finished now, as cancelled
  requested,  ///< a lease holder runs it: it learns at its next checkpoint
};

/// A store of journaled invocations. Every member may be called from several threads at once.
/// Each implementation passes the contract suite (tests/store_contract_test.cpp).
class invocation_store {
 public:
  virtual ~invocation_store() = default;

  /// Creates the invocation `id` of `function`, whose started record is `started` (type 1,
  /// durable before this returns), unless `id` exists. Idempotent: an existing id keeps its
  /// record, and the caller gets it to run if nobody holds it (unfinished, not parked for
  /// later), or else its view. Throws std::invalid_argument for an empty id or function.
  virtual start_reply start(std::string_view id, std::string_view function, std::span<const std::byte> started) = 0;

  /// Takes up to `max` ready invocations (unfinished, nobody holding them, parked ones whose
  /// wake-up time has come), oldest first, each under a new lease with its records.
  virtual std::vector<claimed_invocation> claim(std::size_t max) = 0;

  /// Appends a record to the invocation `owner` holds and returns its seq (1 for the first
  /// record after the started one, then 2, ...). Durable only once `make_durable` covers it.
  /// Throws ownership_lost (storing nothing) if `owner` is not current, and what
  /// `journal::append` throws for a bad type or size.
  virtual std::uint64_t append(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) = 0;

  /// Returns once the records up to `seq` of the invocation are as durable as the store makes
  /// them. Throws ownership_lost if `owner` is not current.
  virtual checkpoint_reply make_durable(const lease& owner, std::uint64_t seq) = 0;

  /// Appends a record and makes it durable, with every record before it, in one step: what a
  /// call's completion needs before its caller goes on (one round trip to a database). The
  /// same as `make_durable(owner, append(owner, type, payload))`, which is the default.
  virtual checkpoint_reply checkpoint(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) {
    const std::uint64_t seq = append(owner, type, payload);
    checkpoint_reply reply = make_durable(owner, seq);
    reply.seq = seq;
    return reply;
  }

  /// The record `seq` (from `append` or `checkpoint`) of the invocation `owner` holds: what a
  /// call that runs again in the same run (its parent retried) reads back. Throws
  /// ownership_lost if `owner` is not current, std::out_of_range for a seq not stored.
  [[nodiscard]] virtual journal_record record(const lease& owner, std::uint64_t seq) const = 0;

  /// Ends the invocation with `outcome` (a record of `type`, its own call's completion),
  /// durably, together with every record before it. The lease ends. Throws ownership_lost if
  /// `owner` is not current (nothing stored).
  virtual void finish(const lease& owner, std::uint8_t type, std::span<const std::byte> outcome) = 0;

  /// Gives the invocation up until `wake_at`: the lease ends, and a `claim` at or after that
  /// time (by the store's clock) takes it again. Records appended so far are made durable.
  virtual void park(const lease& owner, time_point wake_at) = 0;

  /// Gives the invocation up (a graceful hand-off: the worker stops): the lease ends and the
  /// next `claim` may take it. Does nothing if `owner` is not current.
  virtual void release(const lease& owner) = 0;

  /// What the store holds about `id`, or nullopt for an id it does not know.
  [[nodiscard]] virtual std::optional<invocation_view> read(std::string_view id) const = 0;

  /// Asks to cancel `id`, durably: see `cancel_reply`. An unheld invocation is finished at once
  /// as cancelled (its outcome says `failure_reason::cancelled`).
  virtual cancel_reply request_cancel(std::string_view id) = 0;

  /// Returns once work may be ready to claim (an invocation started, released, or due), or
  /// after `at_most`. A hint: `claim` decides.
  virtual void wait_for_work(std::chrono::milliseconds at_most) = 0;

  /// Deletes every finished invocation (its records and its outcome): its id may be started
  /// again afterwards. Returns how many were deleted.
  virtual std::size_t forget_finished() = 0;

  /// How many finished invocations the store holds.
  [[nodiscard]] virtual std::size_t finished_count() const = 0;

  /// Upkeep due after invocations finished (a journal store's automatic compaction), run by
  /// the invocations layer after each finish: what it did, for the `journal_compacted` event,
  /// or nullopt when nothing was due. A failure throws and changes nothing stored.
  virtual std::optional<std::string> housekeeping() { return std::nullopt; }

  /// Records the store found about invocations it does not hold (what a journal keeps of an
  /// attempt whose invocation was compacted away), as (id, count): skipped, and reported once
  /// by `invocations::recover`.
  [[nodiscard]] virtual std::vector<std::pair<std::string, std::size_t>> skipped_records() const { return {}; }

  /// False while this worker's hold on its invocations may be running out (a store with
  /// leases: its last renewal is older than the lease, less a margin). The invocations layer
  /// then starts no further step of them and hands them back, so that no step starts here
  /// after another worker may have taken its invocation over. Cheap: asked before every step.
  [[nodiscard]] virtual bool may_run_steps() const noexcept { return true; }

 protected:
  /// The checks of `start`'s arguments every store makes before storing anything.
  static void check_start(std::string_view id, std::string_view function, std::span<const std::byte> started) {
    if (id.empty()) throw std::invalid_argument("durable::invocation_store::start: an invocation id must not be empty");
    if (function.empty())
      throw std::invalid_argument("durable::invocation_store::start: invocation '" + std::string(id) +
                                  "' names no function");
    journal::check_append(1, started);
  }

  invocation_store() = default;
  invocation_store(const invocation_store&) = default;
  invocation_store& operator=(const invocation_store&) = default;
};

}  // namespace durable
