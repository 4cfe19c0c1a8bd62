// durable/postgres/store.hpp — journaled invocations in a PostgreSQL database, shared by any
// number of worker processes (the optional component durable::postgres, over libpq).
//
//   durable::postgres::store store{{.connection = "host=db.internal dbname=app"}};
//   durable::invocations invocations{rt, store};
//
// Each invocation is a row (its state, owner, epoch, next record number) and its records are
// rows of their own, written by one fenced statement each: a record lands only while the
// writer's epoch is the invocation's, so a worker that lost the invocation writes nothing more
// (see ../../../docs/DESIGN.md, "The PostgreSQL store"). The store creates its schema (name
// configurable) and refuses a schema of a newer version.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <exception>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../codec.hpp"
#include "../error.hpp"
#include "../status.hpp"
#include "../invocation_store.hpp"
#include "../journal.hpp"
#include "../journal_records.hpp"
#include "connection.hpp"

namespace durable::postgres {

/// The schema version this build creates and reads. A schema of an older version is migrated
/// when a store opens it (version 2 added each record's `written_at` and made `finished_at` the
/// store clock's nanoseconds).
inline constexpr std::int64_t schema_version = 2;

/// When a store's checkpoints commit.
enum class commit_mode : std::uint8_t {
  /// Each checkpoint is one statement that commits by itself: the lowest latency for one
  /// invocation.
  every_record,
  /// Checkpoints that arrive while one is being written wait for it, and then go together in one
  /// transaction, sent in one round trip (group commit): many invocations at once (each on a
  /// runtime thread of its own) share round trips and commits. Each is still fenced on its own:
  /// one whose lease is gone is refused, the others land.
  batched,
};

/// How a store reaches its database.
struct store_options {
  /// A libpq connection string.
  std::string connection;
  /// The schema its tables live in (created if missing). Letters, digits and underscores.
  std::string schema = "durable";
  /// The store's clock, for tests: nullptr (the default) uses the database's clock, which
  /// decides wake-up times and leases for every worker alike.
  std::function<time_point()> now = nullptr;
  /// How long this worker's claim on its invocations lasts without a heartbeat: a worker that
  /// dies loses them after this long, and another worker takes them over. Renewed every third
  /// of it by a thread of the store's own, on a connection of its own.
  std::chrono::milliseconds lease = std::chrono::seconds(10);
  /// Connecting at start: how many tries (at least 1), 200 ms apart and doubling, each failure
  /// reported to `on_connect_retry` (default: a line on std::clog). Then the last error is thrown.
  int connect_attempts = 5;
  std::function<void(const std::string&)> on_connect_retry = nullptr;
  /// A connection lost while running (a terminated backend, a server restart): the store
  /// reconnects and goes on, finding out whether the statement in flight landed, for up to this
  /// long before the operation fails (as a journal failure of the invocation).
  std::chrono::milliseconds reconnect_for = std::chrono::seconds(30);
  /// A poison pill: an invocation claimed this many times in a row without storing a record in
  /// between (every worker that ran it died or lost it) is finished as failed
  /// (`attempts_exhausted`) by the next claim instead of run again. 0: no limit.
  int max_claims = 10;
  /// Finished invocations are deleted this long after they finished (by the store's clock), a
  /// batch at a time, by the housekeeping that follows a finish; until then `start` of their id
  /// returns their outcome. 0: kept until `forget_finished`.
  std::chrono::milliseconds retention = std::chrono::hours(24 * 7);
  /// At most this many finished invocations are deleted at a time.
  int retention_batch = 1000;
  /// When checkpoints commit (see commit_mode).
  commit_mode commit = commit_mode::every_record;
};

/// A schema this build cannot use: of a newer version, or tables that are not durable's.
class schema_error : public journal_error {
 public:
  explicit schema_error(const std::string& message) : journal_error(message) {}
};

/// An invocation store in PostgreSQL. Thread-safe (one connection, used under a lock).
class store final : public invocation_store {
 public:
  explicit store(store_options options)
      : options_(std::move(options)), schema_(checked_schema(options_.schema)), me_(worker_name()),
        db_(connect(options_)) {
    if (options_.lease < std::chrono::milliseconds(30))
      throw std::invalid_argument("durable::postgres::store: a lease shorter than 30 ms cannot be renewed in time");
    if (options_.max_claims < 0 || options_.retention_batch < 1 || options_.retention.count() < 0)
      throw std::invalid_argument("durable::postgres::store: max_claims, retention and retention_batch must not be negative "
                                  "(retention_batch at least 1)");
    migrate();
    const auto sent = std::chrono::steady_clock::now();
    register_worker(*db_);
    renewed(sent);
    heartbeat_ = std::jthread([this](std::stop_token stop) { beat(stop); });
  }
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Hands this worker's invocations back (ready for another worker) and leaves.
  ~store() override {
    heartbeat_.request_stop();  // wakes the heartbeat's wait (a stop_token wait: no lost wake-up)
    if (heartbeat_.joinable()) heartbeat_.join();
    try {
      std::lock_guard lock(mutex_);
      if (!db_) return;  // the database is gone: the lease expires by itself
      db_->exec("UPDATE " + table("invocation") +
                    " SET state = 0, owner = NULL, claims = greatest(claims - 1, 0) WHERE owner = $1 AND state = 1",
                parameters().text(me_));
      db_->exec("DELETE FROM " + table("worker") + " WHERE id = $1", parameters().text(me_));
    } catch (...) {  // the database is gone: the lease expires by itself
    }
  }

  /// False once a heartbeat found this worker's lease had run out (the heartbeat could not reach
  /// the database in time): its invocations may run elsewhere now, and its writes for them are
  /// refused. The next claim joins again, under a new worker name.
  [[nodiscard]] bool lease_held() const noexcept { return lease_held_.load(std::memory_order_acquire); }

  /// This store's worker name: what `owner` holds for the invocations it runs (a new one after
  /// its lease ran out, from the next claim on).
  [[nodiscard]] std::string worker() const {
    std::lock_guard lock(name_mutex_);
    return me_;
  }

  start_reply start(std::string_view id, std::string_view function, std::span<const std::byte> started) override {
    check_start(id, function, started);
    return locked([&](connection& db, bool retried) -> start_reply {
      result created = db.exec_prepared("INSERT INTO " + table("invocation") +
                                   " (id, function, state, owner, epoch, claims, started) "
                                   "VALUES ($1, $2, 1, $3, 1, 1, $4::bytea) ON CONFLICT (id) DO NOTHING RETURNING epoch",
                               parameters().text(id).text(function).text(me_).bytes(started));
      if (created.rows() == 1) {
        return {hold(claimed_invocation{lease{std::string(id), static_cast<std::uint64_t>(created.number(0, 0))},
                                        journal_record{started_type, {started.begin(), started.end()}}, {}, false}),
                std::nullopt};
      }
      result taken = db.exec("UPDATE " + table("invocation") +
                                 " SET state = 1, owner = $2, epoch = epoch + 1, claims = claims + 1 "
                                 "WHERE id = $1 AND state = 0 RETURNING epoch, started, cancel_requested",
                             parameters().text(id).text(me_));
      if (taken.rows() != 1 && retried && !held_.contains(std::string(id))) {
        // The connection dropped under an earlier try: if that try created or took the
        // invocation, it is this worker's and running, and nobody here holds it yet.
        taken = db.exec("SELECT epoch, started, cancel_requested FROM " + table("invocation") +
                            " WHERE id = $1 AND state = 1 AND owner = $2",
                        parameters().text(id).text(me_));
      }
      if (taken.rows() == 1) {
        claimed_invocation c{lease{std::string(id), static_cast<std::uint64_t>(taken.number(0, 0))},
                             journal_record{started_type, to_vector(taken.bytes(0, 1))}, {}, taken.boolean(0, 2)};
        c.records = records_of(db, id);
        return {hold(std::move(c)), std::nullopt};
      }
      return {std::nullopt, read_on(db, id)};
    });
  }

  // Nothing is claimed while the hold may be running out: what was claimed could not run.
  std::vector<claimed_invocation> claim(std::size_t max) override {
    if (max == 0 || !may_run_steps()) return {};
    return locked([&](connection& db, bool) { return claim_on(db, max); });
  }

 private:
  std::vector<claimed_invocation> claim_on(connection& db, std::size_t max) {
    const std::int64_t limit = max > 1'000'000 ? 1'000'000 : static_cast<std::int64_t>(max);
    if (!lease_held_.load(std::memory_order_acquire)) rejoin(db);
    // Reaping takes a transaction of its own (five round trips): it runs when a wait for work
    // saw a lease run out, and otherwise at most every 100 ms, so that a busy worker's claims
    // cost one statement and a dead worker's invocations still wait at most that long past its
    // lease.
    const time_point now = store_now();
    if (reap_due_ || now >= next_reap_) {
      reap(db);
      fail_poison_pills(db);
      reap_due_ = false;
      next_reap_ = now + std::chrono::milliseconds(100);
    }
    result taken = db.exec_prepared(claim_sql_,
        now_params(parameters().text(me_).number(limit)).number(claim_limit()));
    struct taken_row {
      std::int64_t order;
      bool has_records;
      claimed_invocation claim;
    };
    std::vector<taken_row> out;
    for (int row = 0; row < taken.rows(); ++row) {
      out.push_back({taken.number(row, 4), taken.number(row, 5) > 1,
                     claimed_invocation{lease{taken.text(row, 0), static_cast<std::uint64_t>(taken.number(row, 1))},
                                        journal_record{started_type, to_vector(taken.bytes(row, 2))}, {},
                                        taken.boolean(row, 3)}});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
    std::vector<claimed_invocation> claimed;
    claimed.reserve(out.size());
    for (taken_row& t : out) {
      if (t.has_records) t.claim.records = records_of(db, t.claim.owner.invocation);  // a fresh one has none
      claimed.push_back(hold(std::move(t.claim)));
    }
    return claimed;
  }

 public:

  std::uint64_t append(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    return checkpoint(owner, type, payload).seq;
  }

  // Every statement commits on its own, so an append is durable when it returns: one fenced
  // statement, one round trip.
  checkpoint_reply checkpoint(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    journal::check_append(type, payload);
    if (options_.commit == commit_mode::batched) return checkpoint_batched(owner, type, payload);
    return checkpoint_one(owner, type, payload, false);
  }

  checkpoint_reply make_durable(const lease& owner, std::uint64_t seq) override {
    return locked([&](connection& db, bool) -> checkpoint_reply {
      result r = db.exec("SELECT cancel_requested, next_seq FROM " + table("invocation") +
                             " WHERE id = $1 AND epoch = $2 AND state = 1",
                         parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)));
      if (r.rows() != 1) throw lost(owner, "make_durable");
      if (seq >= static_cast<std::uint64_t>(r.number(0, 1)))
        throw std::invalid_argument("durable::postgres::store::make_durable: seq " + std::to_string(seq) +
                                    " was never returned by append");
      return {r.boolean(0, 0), 0};
    });
  }

  [[nodiscard]] journal_record record(const lease& owner, std::uint64_t seq) const override {
    return locked([&](connection& db, bool) -> journal_record {
      result r = db.exec("SELECT r.type, r.payload FROM " + table("record") + " r JOIN " + table("invocation") +
                             " i ON i.id = r.invocation_id WHERE i.id = $1 AND i.epoch = $2 AND i.state = 1 AND r.seq = $3",
                         parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(static_cast<std::int64_t>(seq)));
      if (r.rows() == 1) return journal_record{static_cast<std::uint8_t>(r.number(0, 0)), to_vector(r.bytes(0, 1))};
      result held = db.exec("SELECT 1 FROM " + table("invocation") + " WHERE id = $1 AND epoch = $2 AND state = 1",
                            parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)));
      if (held.rows() != 1) throw lost(owner, "a read");
      throw std::out_of_range("durable::postgres::store::record: no record " + std::to_string(seq));
    });
  }

  void finish(const lease& owner, std::uint8_t type, std::span<const std::byte> outcome) override {
    journal::check_append(type, outcome);
    locked([&](connection& db, bool retried) {
      result r = db.exec_prepared("UPDATE " + table("invocation") +
                             " SET state = 3, owner = NULL, outcome_type = $3::smallint, outcome = $4::bytea, "
                             "finished_at = " + now_sql(5) + " WHERE id = $1 AND epoch = $2 AND state = 1",
                         now_params(parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch))
                                        .number(type).bytes(outcome)));
      if (r.affected() != 1 && !(retried && landed_as(db, owner, "state = 3 AND outcome = $3::bytea", outcome))) {
        throw lost(owner, "finish");
      }
      held_.erase(owner.invocation);
    });
  }

  // Parking is progress too: the count of claims without progress starts again.
  void park(const lease& owner, time_point wake_at) override {
    locked([&](connection& db, bool retried) {
      const std::int64_t at = wake_at.time_since_epoch().count();
      result r = db.exec("UPDATE " + table("invocation") +
                             " SET state = 2, owner = NULL, ready_at = $3, claims = 0 WHERE id = $1 AND epoch = $2 AND state = 1",
                         parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(at));
      if (r.affected() != 1 && !(retried && landed_as(db, owner, "state = 2 AND ready_at = $3::bigint", at))) {
        throw lost(owner, "park");
      }
      held_.erase(owner.invocation);
    });
  }

  // A hand-off is not a failed claim: the count of claims without progress goes back down.
  // Never throws: if the database cannot be reached, the reconnection hands the invocation
  // back instead (nobody holds it here any more).
  void release(const lease& owner) override {
    try {
      locked([&](connection& db, bool) {
        held_.erase(owner.invocation);
        static_cast<void>(db.exec("UPDATE " + table("invocation") +
                                      " SET state = 0, owner = NULL, claims = greatest(claims - 1, 0) "
                                      "WHERE id = $1 AND epoch = $2 AND state = 1",
                                  parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch))));
      });
    } catch (const database_error&) {
    }
  }

  [[nodiscard]] std::optional<invocation_view> read(std::string_view id) const override {
    return locked([&](connection& db, bool) { return read_on(db, id); });
  }

  cancel_reply request_cancel(std::string_view id) override {
    return locked([&](connection& db, bool) -> cancel_reply {
      result r = db.exec("UPDATE " + table("invocation") +
                             " SET cancel_requested = true WHERE id = $1 AND state <> 3 RETURNING state, function",
                         parameters().text(id));
      if (r.rows() == 0) return read_on(db, id) ? cancel_reply::finished : cancel_reply::unknown;
      if (r.number(0, 0) == 1) return cancel_reply::requested;
      const std::vector<std::byte> outcome = encode(cancelled_outcome(std::string(id), r.text(0, 1), "the invocation was cancelled"));
      result done = db.exec("UPDATE " + table("invocation") +
                                " SET state = 3, owner = NULL, outcome_type = $2::smallint, outcome = $3::bytea, "
                                "finished_at = " + now_sql(4) + " WHERE id = $1 AND state IN (0, 2)",
                            now_params(parameters().text(id).number(completed_type).bytes(outcome)));
      return done.affected() == 1 ? cancel_reply::cancelled : cancel_reply::requested;  // claimed meanwhile
    });
  }

  // Work is: a ready invocation, a parked one that is due, or a worker whose lease ran out
  // (the next claim takes its invocations over).
  void wait_for_work(std::chrono::milliseconds at_most) override {
    const auto deadline = std::chrono::steady_clock::now() + at_most;
    std::chrono::milliseconds pause{5};
    for (;;) {
      const bool found = locked([&](connection& db, bool) {
        result r = db.exec("SELECT EXISTS (SELECT 1 FROM " + table("invocation") + " WHERE state = 0 OR (state = 2 AND ready_at <= " +
                               now_sql(1) + ")), EXISTS (SELECT 1 FROM " + table("worker") + " WHERE lease_until < " +
                               now_sql(1) + ")",
                           now_params(parameters()));
        if (r.boolean(0, 1)) reap_due_ = true;  // the next claim reaps at once
        return r.boolean(0, 0) || r.boolean(0, 1);
      });
      if (found) return;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds{200});
    }
  }

  std::size_t forget_finished() override {
    return locked([&](connection& db, bool) {
      result r = db.exec("WITH done AS (DELETE FROM " + table("invocation") + " WHERE state = 3 RETURNING id), "
                         "gone AS (DELETE FROM " + table("record") + " WHERE invocation_id IN (SELECT id FROM done)) "
                         "SELECT count(*) FROM done");
      return static_cast<std::size_t>(r.number(0, 0));
    });
  }

  [[nodiscard]] std::size_t finished_count() const override {
    return locked([&](connection& db, bool) {
      result r = db.exec("SELECT count(*) FROM " + table("invocation") + " WHERE state = 3");
      return static_cast<std::size_t>(r.number(0, 0));
    });
  }

  // Retention: one batch of finished invocations older than `retention` is deleted, at most
  // once every tenth of the retention (and at least every minute) unless the last batch was
  // full. Several workers may sweep at once: SKIP LOCKED keeps them off each other's rows.
  std::optional<std::string> housekeeping() override {
    if (options_.retention.count() == 0) return std::nullopt;
    // By the store's clock, like the retention itself (a test's clock moves both).
    const time_point now = store_now();
    {
      std::lock_guard lock(mutex_);
      if (now < next_sweep_) return std::nullopt;
      next_sweep_ = now + std::min<std::chrono::nanoseconds>(options_.retention / 10, std::chrono::minutes(1));
    }
    const std::int64_t deleted = locked([&](connection& db, bool) {
      result r = db.exec("WITH old AS (SELECT id FROM " + table("invocation") + " WHERE state = 3 AND finished_at < " +
                             now_sql(1) + " - $2 ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED), "
                             "gone AS (DELETE FROM " + table("record") + " WHERE invocation_id IN (SELECT id FROM old)), "
                             "done AS (DELETE FROM " + table("invocation") + " WHERE id IN (SELECT id FROM old) RETURNING 1) "
                             "SELECT count(*) FROM done",
                         now_params(parameters())
                             .number(std::chrono::duration_cast<std::chrono::nanoseconds>(options_.retention).count())
                             .number(options_.retention_batch));
      return r.number(0, 0);
    });
    if (deleted == 0) return std::nullopt;
    if (deleted == options_.retention_batch) {
      std::lock_guard lock(mutex_);
      next_sweep_ = now;  // more may be due: the next finish sweeps again
    }
    return "deleted " + std::to_string(deleted) + " finished invocation" + (deleted == 1 ? "" : "s") +
           " past the retention of " + std::to_string(options_.retention.count()) + " ms";
  }

  /// Drops the schema and everything in it (tests).
  void drop_schema() {
    locked([&](connection& db, bool) { db.exec_script("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE"); });
  }

  /// True until a tenth of the lease before it would run out, counted from when the last
  /// renewal that succeeded was sent (so never later than the database's own expiry).
  [[nodiscard]] bool may_run_steps() const noexcept override {
    return std::chrono::steady_clock::now().time_since_epoch().count() < hold_until_.load(std::memory_order_acquire);
  }

  /// How often the store's connection was lost and made again (the heartbeat's not counted).
  [[nodiscard]] std::uint64_t reconnections() const noexcept { return reconnections_.load(std::memory_order_relaxed); }

  /// The server process of the store's connection, or 0 while it has none (fault tests
  /// terminate it with `pg_terminate_backend`).
  [[nodiscard]] int backend_pid() const {
    std::lock_guard lock(mutex_);
    return db_ ? db_->backend_pid() : 0;
  }

 private:
  static constexpr auto started_type = static_cast<std::uint8_t>(journal_record_type::invocation_started);
  static constexpr auto completed_type = static_cast<std::uint8_t>(journal_record_type::call_completed);

  static std::string checked_schema(const std::string& name) {
    const bool valid = !name.empty() && name.size() <= 48 &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                       }) &&
                       !(name[0] >= '0' && name[0] <= '9');
    if (!valid)
      throw std::invalid_argument("durable::postgres::store: schema name '" + name +
                                  "' must be 1 to 48 lower-case letters, digits and underscores, not starting with a digit");
    return name;
  }

  // Connects, trying again a bounded number of times (a server still starting, a network
  // hiccup), and says so each time.
  static connection connect(const store_options& o) {
    std::chrono::milliseconds pause{200};
    const int attempts = std::max(1, o.connect_attempts);
    for (int attempt = 1;; ++attempt) {
      try {
        return connection(o.connection);
      } catch (const database_error& e) {
        if (attempt >= attempts) throw;
        const std::string what = std::string(e.what()) + "; try " + std::to_string(attempt + 1) + " of " +
                                 std::to_string(attempts) + " in " + std::to_string(pause.count()) + " ms";
        if (o.on_connect_retry) {
          o.on_connect_retry(what);
        } else {
          std::clog << what << '\n';
        }
        std::this_thread::sleep_for(pause);
        pause *= 2;
      }
    }
  }

  static std::string host_name() {
    char host[256] = {};
    static_cast<void>(::gethostname(host, sizeof host - 1));
    return host;
  }
  static std::string worker_name() {
    std::random_device entropy;
    return host_name() + ":" + std::to_string(::getpid()) + ":" + std::to_string(entropy());
  }
  [[nodiscard]] std::int64_t lease_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(options_.lease).count();
  }

  // A record stored means progress: the count of claims without progress starts again.
  // `landed_maybe`: an earlier try (a batch whose connection was lost) may have stored it.
  checkpoint_reply checkpoint_one(const lease& owner, std::uint8_t type, std::span<const std::byte> payload,
                                  bool landed_maybe) {
    return locked([&](connection& db, bool retried) -> checkpoint_reply {
      retried = retried || landed_maybe;
      const auto held = held_.find(owner.invocation);
      const std::int64_t acknowledged = held != held_.end() && held->second.epoch == owner.epoch ? held->second.last_seq : 0;
      if (retried) {
        // The connection dropped under an earlier try: did it land? Only this worker writes
        // under this epoch, one record at a time, so a record of this epoch past the last one
        // acknowledged, with these bytes, is that try's.
        result landed = db.exec("SELECT r.seq, i.cancel_requested FROM " + table("record") + " r JOIN " + table("invocation") +
                                    " i ON i.id = r.invocation_id WHERE r.invocation_id = $1 AND r.epoch = $2 AND "
                                    "r.seq > $3 AND r.type = $4::smallint AND r.payload = $5::bytea",
                                parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch))
                                    .number(acknowledged).number(type).bytes(payload));
        if (landed.rows() == 1) return acknowledge(owner, landed.boolean(0, 1), landed.number(0, 0));
      }
      result r = db.exec_prepared(checkpoint_sql_, checkpoint_parameters(owner, type, payload));
      if (r.rows() != 1) throw lost(owner, "an append");
      return acknowledge(owner, r.boolean(0, 1), r.number(0, 0));
    });
  }


  // One checkpoint waiting for its batch (on the waiter's stack).
  struct pending_checkpoint {
    const lease* owner;
    std::uint8_t type;
    std::span<const std::byte> payload;
    std::optional<checkpoint_reply> reply{};
    std::exception_ptr error{};
    bool done = false;
  };

  // Group commit: the first waiter to find no batch in flight takes everything queued and
  // commits it; the others wait for their turn (they may lead the next batch).
  checkpoint_reply checkpoint_batched(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) {
    pending_checkpoint me{&owner, type, payload};
    std::unique_lock lock(batch_mutex_);
    batch_queue_.push_back(&me);
    while (!me.done) {
      if (batch_in_flight_) {
        batch_done_.wait(lock);
        continue;
      }
      batch_in_flight_ = true;
      std::vector<pending_checkpoint*> batch;
      batch.swap(batch_queue_);
      lock.unlock();
      commit_batch(batch);
      lock.lock();
      batch_in_flight_ = false;
      batch_done_.notify_all();
    }
    if (me.error) std::rethrow_exception(me.error);
    return *me.reply;
  }

  // Every checkpoint of `batch` in one transaction. If a statement fails, nothing of the batch
  // is stored and each is tried on its own (so only the bad one fails); if the connection is
  // lost, each is tried on its own knowing it may have landed.
  void commit_batch(const std::vector<pending_checkpoint*>& batch) noexcept {
    bool landed_maybe = false;
    try {
      std::lock_guard lock(mutex_);
      if (!db_) reconnect();
      std::vector<parameters> params;
      params.reserve(batch.size());
      std::vector<std::pair<const std::string*, const parameters*>> statements;
      for (const pending_checkpoint* p : batch) params.push_back(checkpoint_parameters(*p->owner, p->type, p->payload));
      for (const parameters& p : params) statements.emplace_back(&checkpoint_sql_, &p);
      std::vector<result> results = db_->exec_in_one_transaction(statements);
      for (std::size_t k = 0; k < batch.size(); ++k) {
        pending_checkpoint& p = *batch[k];
        if (results[k].rows() == 1) {
          p.reply = acknowledge(*p.owner, results[k].boolean(0, 1), results[k].number(0, 0));
        } else {
          p.error = std::make_exception_ptr(lost(*p.owner, "an append"));
        }
        p.done = true;
      }
      return;
    } catch (const database_error& e) {
      if (e.connection_lost()) {
        std::lock_guard lock(mutex_);
        db_.reset();
        landed_maybe = true;
      }
    } catch (...) {
    }
    for (pending_checkpoint* p : batch) {
      try {
        p->reply = checkpoint_one(*p->owner, p->type, p->payload, landed_maybe);
      } catch (...) {
        p->error = std::current_exception();
      }
      p->done = true;
    }
  }

  static parameters checkpoint_parameters(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) {
    return parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(type).bytes(payload);
  }

  // Runs `f(connection, retried)` under the lock. A lost connection is reconnected, for up to
  // `reconnect_for`, and `f` runs again with `retried` true: whatever it writes must find out
  // whether its earlier try landed. Any other error is thrown as it is.
  template <class F>
  std::invoke_result_t<F&, connection&, bool> locked(F&& f) const {
    std::lock_guard lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + options_.reconnect_for;
    std::chrono::milliseconds pause{20};
    bool retried = false;
    for (;;) {
      try {
        if (!db_) reconnect();
        return f(*db_, retried);
      } catch (const database_error& e) {
        if (!e.connection_lost()) throw;
        db_.reset();
        if (std::chrono::steady_clock::now() + pause > deadline) {
          throw database_error(std::string(e.what()) + " (reconnecting for " + std::to_string(options_.reconnect_for.count()) +
                                   " ms did not help)",
                               e.sqlstate());
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds{500});
        retried = true;
      }
    }
  }

  // A new connection after one was lost. Claims that may have landed under the lost one were
  // never handed to anybody here: every invocation the database says this worker runs and
  // nobody here holds goes back to ready.
  void reconnect() const {
    connection fresh(options_.connection);
    std::vector<std::string> ids;
    ids.reserve(held_.size());
    for (const auto& entry : held_) ids.push_back(entry.first);
    fresh.exec("UPDATE " + table("invocation") +
                   " SET state = 0, owner = NULL, claims = greatest(claims - 1, 0) "
                   "WHERE state = 1 AND owner = $1 AND NOT (id = ANY($2::text[]))",
               parameters().text(me_).text_array(ids));
    db_.emplace(std::move(fresh));
    reconnections_.fetch_add(1, std::memory_order_relaxed);
  }

  // The lease of a claim, now held here (what a lost connection must not hand back).
  claimed_invocation hold(claimed_invocation c) {
    held_.insert_or_assign(c.owner.invocation, held_lease{c.owner.epoch, 0});
    return c;
  }
  checkpoint_reply acknowledge(const lease& owner, bool cancel_requested, std::int64_t seq) {
    if (const auto held = held_.find(owner.invocation); held != held_.end() && held->second.epoch == owner.epoch)
      held->second.last_seq = seq;
    return {cancel_requested, static_cast<std::uint64_t>(seq)};
  }

  // After a lost connection: whether an earlier try of a write that ends the lease landed (the
  // invocation is in the state it would have left, at this epoch).
  template <class Value>
  bool landed_as(connection& db, const lease& owner, const std::string& condition, const Value& value) {
    parameters p;
    p.text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch));
    if constexpr (std::is_integral_v<Value>) {
      p.number(value);
    } else {
      p.bytes(value);
    }
    return db.exec("SELECT 1 FROM " + table("invocation") + " WHERE id = $1 AND epoch = $2 AND " + condition, p).rows() == 1;
  }

  [[nodiscard]] std::int64_t claim_limit() const noexcept {
    return options_.max_claims == 0 ? std::numeric_limits<std::int32_t>::max() : options_.max_claims;
  }

  // Invocations due to be claimed once more than `max_claims` allows are finished as failed
  // (a poison pill), each with an outcome naming how often it was claimed.
  void fail_poison_pills(connection& db) {
    if (options_.max_claims == 0) return;
    result poison = db.exec("SELECT id, function, claims FROM " + table("invocation") + " WHERE (state = 0 OR (state = 2 AND ready_at <= " +
                                now_sql(1) + ")) AND claims >= $2 LIMIT 100",
                            now_params(parameters()).number(options_.max_claims));
    for (int row = 0; row < poison.rows(); ++row) {
      call_completed_record outcome{poison.text(row, 0), call_path{0}, poison.text(row, 1)};
      outcome.code = status::permanent_error;
      outcome.reason = failure_reason::attempts_exhausted;
      outcome.attempts = static_cast<std::uint32_t>(poison.number(row, 2));
      outcome.message = "a poison pill: claimed " + std::to_string(outcome.attempts) +
                        " times in a row without storing a record (every worker that ran it died or lost it)";
      db.exec("UPDATE " + table("invocation") +
                  " SET state = 3, owner = NULL, outcome_type = $2::smallint, outcome = $3::bytea, finished_at = " + now_sql(5) +
                  " WHERE id = $1 AND (state = 0 OR state = 2) AND claims >= $4",
              now_params(parameters().text(outcome.id).number(completed_type).bytes(encode(outcome))
                             .number(options_.max_claims)));
    }
  }

  // Running invocations of workers whose lease expired go back to ready (epoch unchanged: the
  // next claim raises it, which fences the dead worker), and the dead workers are forgotten.
  // One worker at a time does it (a transaction-scoped advisory lock, skipped if taken).
  void reap(connection& db) {
    db.exec_script("BEGIN");
    try {
      result mine = db.exec("SELECT pg_try_advisory_xact_lock(hashtext($1))", parameters().text("durable.reap." + schema_));
      if (mine.boolean(0, 0)) {
        db.exec("WITH dead AS (DELETE FROM " + table("worker") + " WHERE lease_until < " + now_sql(1) +
                    " RETURNING id) UPDATE " + table("invocation") +
                    " SET state = 0, owner = NULL WHERE state = 1 AND owner IN (SELECT id FROM dead)",
                now_params(parameters()));
        db.exec("UPDATE " + table("invocation") + " SET state = 0, owner = NULL WHERE state = 1 AND owner NOT IN (SELECT id FROM " +
                table("worker") + ")");
      }
      db.exec_script("COMMIT");
    } catch (...) {
      try {
        db.exec_script("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
  }

  // A worker whose lease ran out may have had its invocations taken over, and its row may be
  // gone: it joins again under a new name, so that what it claims now is not mistaken for what
  // it held then (those invocations are reaped by the old name, and their writes fenced).
  void rejoin(connection& db) {
    std::string fresh = worker_name();
    {
      std::lock_guard lock(name_mutex_);
      me_ = std::move(fresh);
    }
    const auto sent = std::chrono::steady_clock::now();
    register_worker(db);
    renewed(sent);
    lease_held_.store(true, std::memory_order_release);
  }

  // The lease was renewed by a statement sent at `sent`: the database's expiry is at least a
  // lease after that.
  void renewed(std::chrono::steady_clock::time_point sent) noexcept {
    const auto until = sent + options_.lease - options_.lease / 10;
    hold_until_.store(until.time_since_epoch().count(), std::memory_order_release);
  }

  void register_worker(connection& db) {
    db.exec("INSERT INTO " + table("worker") + " (id, host, pid, lease_until) VALUES ($1, $2, $3, " + now_sql(4) +
                " + $5) ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
            now_params(parameters().text(me_).text(host_name()).number(::getpid())).number(lease_ns()));
  }

  // The heartbeat: renews the lease every third of it, on a connection of its own (a worker
  // busy with long statements must not lose its lease for it), and after a failure again every
  // tenth of it. A lease found run out stays out: the next claim joins again under a new name
  // (see `rejoin`).
  void beat(const std::stop_token& stop) {
    std::optional<connection> own;
    std::mutex m;
    std::unique_lock lock(m);
    bool failed = false;
    for (;;) {
      // A wait on the stop token itself: a stop requested before the wait starts is not missed.
      beat_wake_.wait_for(lock, stop, failed ? options_.lease / 10 : options_.lease / 3, [] { return false; });
      if (stop.stop_requested()) return;
      failed = true;
      try {
        if (!own || !own->ok()) own.emplace(options_.connection);
        const auto sent = std::chrono::steady_clock::now();
        result r = own->exec("UPDATE " + table("worker") + " SET lease_until = " + now_sql(2) + " + $3 WHERE id = $1 AND lease_until >= " +
                                 now_sql(2),
                             now_params(parameters().text(worker())).number(lease_ns()));
        if (r.affected() != 1) {
          lease_held_.store(false, std::memory_order_release);
        } else {
          renewed(sent);
        }
        failed = false;
      } catch (...) {
        own.reset();  // reconnect at the next beat; the lease runs out meanwhile if the server is gone
      }
    }
  }

  // The store's clock, as the process sees it (the database's decides leases and wake-ups).
  [[nodiscard]] time_point store_now() const {
    return options_.now ? options_.now()
                        : std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }

  [[nodiscard]] std::string table(std::string_view name) const { return schema_ + "." + std::string(name); }

  // The store's "now" in nanoseconds since the epoch, as SQL: parameter `$n`, which
  // `now_params` sets to the options' clock, or to NULL for the database's clock.
  [[nodiscard]] static std::string now_sql(int n) {
    return "coalesce($" + std::to_string(n) + "::bigint, (extract(epoch from clock_timestamp()) * 1000000000)::bigint)";
  }
  parameters now_params(parameters p) const {
    if (options_.now) {
      p.number(options_.now().time_since_epoch().count());
    } else {
      p.null();
    }
    return p;
  }

  static std::vector<std::byte> to_vector(std::span<const std::byte> b) { return {b.begin(), b.end()}; }

  // Under the lock: the lease is no longer held here.
  [[nodiscard]] ownership_lost lost(const lease& owner, std::string_view what) const {
    if (const auto held = held_.find(owner.invocation); held != held_.end() && held->second.epoch == owner.epoch)
      held_.erase(held);
    return ownership_lost("durable::postgres: " + std::string(what) + " of invocation '" + owner.invocation +
                          "' under epoch " + std::to_string(owner.epoch) +
                          " refused: it was claimed again, released, parked or finished");
  }

  [[nodiscard]] std::vector<journal_record> records_of(connection& db, std::string_view id) const {
    result r = db.exec_prepared("SELECT type, payload FROM " + table("record") + " WHERE invocation_id = $1 ORDER BY seq",
                        parameters().text(id));
    std::vector<journal_record> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int row = 0; row < r.rows(); ++row)
      out.push_back(journal_record{static_cast<std::uint8_t>(r.number(row, 0)), to_vector(r.bytes(row, 1))});
    return out;
  }

  [[nodiscard]] std::optional<invocation_view> read_on(connection& db, std::string_view id) const {
    result r = db.exec("SELECT function, state, outcome_type, outcome, cancel_requested FROM " + table("invocation") +
                            " WHERE id = $1",
                        parameters().text(id));
    if (r.rows() == 0) return std::nullopt;
    invocation_view v{std::string(id), r.text(0, 0), static_cast<stored_state>(r.number(0, 1)), std::nullopt,
                      r.boolean(0, 4)};
    if (!r.null(0, 3)) v.outcome = journal_record{static_cast<std::uint8_t>(r.number(0, 2)), to_vector(r.bytes(0, 3))};
    return v;
  }

  // Creates the schema, or checks the one there: under an advisory lock, so that workers
  // starting together migrate once.
  void migrate() {
    connection& db = *db_;
    db.exec("SELECT pg_advisory_lock(hashtext($1))", parameters().text("durable.schema." + schema_));
    try {
      db.exec_script("CREATE SCHEMA IF NOT EXISTS " + schema_);
      result tables = db.exec("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                               parameters().text(schema_));
      std::vector<std::string> names;
      for (int row = 0; row < tables.rows(); ++row) names.push_back(tables.text(row, 0));
      const bool has_meta = std::find(names.begin(), names.end(), "meta") != names.end();
      if (!names.empty() && !has_meta) {
        throw schema_error("durable::postgres: schema '" + schema_ +
                           "' holds tables that are not durable's (no meta table); choose another schema name");
      }
      if (has_meta) {
        result v = db.exec("SELECT value FROM " + table("meta") + " WHERE key = 'schema_version'");
        if (v.rows() != 1) throw schema_error("durable::postgres: schema '" + schema_ + "' has a meta table without a schema_version");
        const std::string text = v.text(0, 0);
        const std::int64_t found = std::atoll(text.c_str());
        if (found > schema_version) {
          throw schema_error("durable::postgres: schema '" + schema_ + "' has version " + text +
                             ", newer than this build's " + std::to_string(schema_version) +
                             "; upgrade durable, or use another schema");
        }
        if (found < 1) throw schema_error("durable::postgres: schema '" + schema_ + "' has an unreadable version '" + text + "'");
        if (found == 1) migrate_from_1(db);
      } else {
        create_tables(db);
      }
    } catch (...) {
      try {
        db.exec("SELECT pg_advisory_unlock(hashtext($1))", parameters().text("durable.schema." + schema_));
      } catch (...) {
      }
      throw;
    }
    db.exec("SELECT pg_advisory_unlock(hashtext($1))", parameters().text("durable.schema." + schema_));
  }

  void create_tables(connection& db) {
    const std::string s = schema_;
    db.exec_script(
        "BEGIN;"
        "CREATE TABLE " + s + ".meta (key text PRIMARY KEY, value text NOT NULL);"
        "CREATE TABLE " + s + ".invocation ("
        "  id text PRIMARY KEY, function text NOT NULL,"
        "  state smallint NOT NULL,"  // 0 ready, 1 running, 2 parked, 3 finished (stored_state)
        "  owner text, epoch bigint NOT NULL DEFAULT 0, next_seq bigint NOT NULL DEFAULT 1,"
        "  ready_at bigint, claims integer NOT NULL DEFAULT 0, cancel_requested boolean NOT NULL DEFAULT false,"
        "  started bytea NOT NULL, outcome_type smallint, outcome bytea,"
        "  created bigserial, created_at timestamptz NOT NULL DEFAULT now(), finished_at bigint"
        ") WITH (fillfactor = 80);"
        "CREATE INDEX invocation_ready ON " + s + ".invocation (created) WHERE state = 0;"
        "CREATE INDEX invocation_parked ON " + s + ".invocation (ready_at) WHERE state = 2;"
        "CREATE INDEX invocation_owned ON " + s + ".invocation (owner) WHERE state = 1;"
        "CREATE INDEX invocation_done ON " + s + ".invocation (finished_at) WHERE state = 3;"
        "CREATE TABLE " + s + ".worker (id text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL,"
        "  started_at timestamptz NOT NULL DEFAULT now(), lease_until bigint NOT NULL);"
        "CREATE TABLE " + s + ".record ("
        "  invocation_id text NOT NULL, seq bigint NOT NULL, type smallint NOT NULL, payload bytea NOT NULL,"
        "  epoch bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
        "  PRIMARY KEY (invocation_id, seq));"
        "INSERT INTO " + s + ".meta VALUES ('schema_version', '" + std::to_string(schema_version) + "');"
        "COMMIT;");
  }

  // Version 1 to 2: records say when they were written (real time, for inspection), and
  // `finished_at` is in the store clock's nanoseconds, as every other time the store compares.
  void migrate_from_1(connection& db) {
    const std::string s = schema_;
    db.exec_script(
        "BEGIN;"
        "ALTER TABLE " + s + ".record ADD COLUMN written_at timestamptz NOT NULL DEFAULT clock_timestamp();"
        "ALTER TABLE " + s + ".invocation ALTER COLUMN finished_at TYPE bigint "
        "  USING (extract(epoch from finished_at) * 1000000000)::bigint;"
        "UPDATE " + s + ".meta SET value = '2' WHERE key = 'schema_version';"
        "COMMIT;");
  }

  store_options options_;
  std::string schema_;
  // The claim: ready and due-parked invocations apart, each through its partial index (an OR of
  // the two would scan the table), then the oldest of both, taken under a new epoch. Built
  // once: it is run for every claim.
  std::string claim_sql_ =
      "UPDATE " + table("invocation") +
      " AS i SET state = 1, owner = $1, epoch = i.epoch + 1, claims = i.claims + 1 FROM ("
      "SELECT id FROM (SELECT id, created FROM (SELECT id, created FROM " + table("invocation") +
      " WHERE state = 0 AND claims < $4 ORDER BY created LIMIT $2 FOR UPDATE SKIP LOCKED) ready UNION ALL "
      "SELECT id, created FROM (SELECT id, created FROM " + table("invocation") + " WHERE state = 2 AND ready_at <= " +
      now_sql(3) + " AND claims < $4 ORDER BY ready_at LIMIT $2 FOR UPDATE SKIP LOCKED) woken) both_kinds "
      "ORDER BY created LIMIT $2) AS due WHERE i.id = due.id "
      "RETURNING i.id, i.epoch, i.started, i.cancel_requested, i.created, i.next_seq";
  // The fenced statement of a checkpoint: the invocation's next seq, only while this epoch
  // holds it, and the record with that seq; a record stored means progress (claims back to 0).
  std::string checkpoint_sql_ =
      "WITH f AS (UPDATE " + schema_ + ".invocation SET next_seq = next_seq + 1, claims = 0 "
      "WHERE id = $1 AND epoch = $2 AND state = 1 RETURNING next_seq - 1 AS seq, cancel_requested), "
      "i AS (INSERT INTO " + schema_ + ".record (invocation_id, seq, type, payload, epoch) "
      "SELECT $1, f.seq, $3::smallint, $4::bytea, $2 FROM f RETURNING seq) SELECT i.seq, f.cancel_requested FROM i, f";
  mutable std::mutex name_mutex_;
  std::string me_;  // written under both mutex_ and name_mutex_; read under either
  struct held_lease {
    std::uint64_t epoch;
    std::int64_t last_seq;  // the last record acknowledged under it (0: none yet)
  };

  mutable std::mutex mutex_;
  mutable std::optional<connection> db_;              // under mutex_; empty while reconnecting
  mutable std::map<std::string, held_lease> held_;    // under mutex_: the leases this store handed out
  time_point next_sweep_{};                           // under mutex_: by the store's clock
  bool reap_due_ = true;                              // under mutex_
  time_point next_reap_{};                            // under mutex_: by the store's clock
  std::atomic<bool> lease_held_{true};
  std::mutex batch_mutex_;                         // the batched commit mode's queue
  std::condition_variable batch_done_;
  std::vector<pending_checkpoint*> batch_queue_;   // under batch_mutex_
  bool batch_in_flight_ = false;                   // under batch_mutex_
  mutable std::atomic<std::uint64_t> reconnections_{0};
  std::atomic<std::int64_t> hold_until_{0};  // steady_clock ticks: see may_run_steps
  std::condition_variable_any beat_wake_;
  std::jthread heartbeat_;  // last: started once everything else is ready, stopped first
};

}  // namespace durable::postgres
