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
#include <iostream>
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
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../codec.hpp"
#include "../invocation_store.hpp"
#include "../journal.hpp"
#include "../journal_records.hpp"
#include "connection.hpp"

namespace durable::postgres {

/// The schema version this build creates and reads.
inline constexpr std::int64_t schema_version = 1;

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
    migrate();
    db_.exec("INSERT INTO " + table("worker") + " (id, host, pid, lease_until) VALUES ($1, $2, $3, " + now_sql(4) +
                 " + $5)",
             now_params(parameters().text(me_).text(host_name()).number(::getpid())).number(lease_ns()));
    heartbeat_ = std::jthread([this](std::stop_token stop) { beat(stop); });
  }
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Hands this worker's invocations back (ready for another worker) and leaves.
  ~store() override {
    heartbeat_.request_stop();
    beat_wake_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
    try {
      std::lock_guard lock(mutex_);
      db_.exec("UPDATE " + table("invocation") + " SET state = 0, owner = NULL WHERE owner = $1 AND state = 1",
               parameters().text(me_));
      db_.exec("DELETE FROM " + table("worker") + " WHERE id = $1", parameters().text(me_));
    } catch (...) {  // the database is gone: the lease expires by itself
    }
  }

  /// False once a heartbeat found this worker's lease expired or taken away: its invocations may
  /// run elsewhere now (its writes are refused either way).
  [[nodiscard]] bool lease_held() const noexcept { return lease_held_.load(std::memory_order_acquire); }

  /// This store's worker name: what `owner` holds for the invocations it runs.
  [[nodiscard]] const std::string& worker() const noexcept { return me_; }

  start_reply start(std::string_view id, std::string_view function, std::span<const std::byte> started) override {
    check_start(id, function, started);
    std::lock_guard lock(mutex_);
    result created = db_.exec("INSERT INTO " + table("invocation") +
                                  " (id, function, state, owner, epoch, claims, started) "
                                  "VALUES ($1, $2, 1, $3, 1, 1, $4::bytea) ON CONFLICT (id) DO NOTHING RETURNING epoch",
                              parameters().text(id).text(function).text(me_).bytes(started));
    if (created.rows() == 1) {
      return {claimed_invocation{lease{std::string(id), static_cast<std::uint64_t>(created.number(0, 0))},
                                 journal_record{started_type, {started.begin(), started.end()}}, {}, false},
              std::nullopt};
    }
    result taken = db_.exec("UPDATE " + table("invocation") +
                                " SET state = 1, owner = $2, epoch = epoch + 1, claims = claims + 1 "
                                "WHERE id = $1 AND state = 0 RETURNING epoch, started, cancel_requested",
                            parameters().text(id).text(me_));
    if (taken.rows() == 1) {
      claimed_invocation c{lease{std::string(id), static_cast<std::uint64_t>(taken.number(0, 0))},
                           journal_record{started_type, to_vector(taken.bytes(0, 1))}, {}, taken.boolean(0, 2)};
      c.records = records_of(id);
      return {std::move(c), std::nullopt};
    }
    return {std::nullopt, read_locked(id)};
  }

  std::vector<claimed_invocation> claim(std::size_t max) override {
    if (max == 0) return {};
    std::lock_guard lock(mutex_);
    const std::int64_t limit = max > 1'000'000 ? 1'000'000 : static_cast<std::int64_t>(max);
    reap_locked();
    result taken = db_.exec(
        "UPDATE " + table("invocation") +
            " AS i SET state = 1, owner = $1, epoch = i.epoch + 1, claims = i.claims + 1 FROM (SELECT id FROM " +
            table("invocation") + " WHERE state = 0 OR (state = 2 AND ready_at <= " + now_sql(3) +
            ") ORDER BY created ASC LIMIT $2 FOR UPDATE SKIP LOCKED) AS due WHERE i.id = due.id "
            "RETURNING i.id, i.epoch, i.started, i.cancel_requested, i.created",
        now_params(parameters().text(me_).number(limit)));
    std::vector<std::pair<std::int64_t, claimed_invocation>> out;
    for (int row = 0; row < taken.rows(); ++row) {
      out.emplace_back(taken.number(row, 4),
                       claimed_invocation{lease{taken.text(row, 0), static_cast<std::uint64_t>(taken.number(row, 1))},
                                          journal_record{started_type, to_vector(taken.bytes(row, 2))}, {},
                                          taken.boolean(row, 3)});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<claimed_invocation> claimed;
    claimed.reserve(out.size());
    for (auto& [order, c] : out) {
      c.records = records_of(c.owner.invocation);
      claimed.push_back(std::move(c));
    }
    return claimed;
  }

  std::uint64_t append(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    return checkpoint(owner, type, payload).seq;
  }

  // Every statement commits on its own, so an append is durable when it returns: one fenced
  // statement, one round trip.
  checkpoint_reply checkpoint(const lease& owner, std::uint8_t type, std::span<const std::byte> payload) override {
    journal::check_append(type, payload);
    std::lock_guard lock(mutex_);
    result r = db_.exec("WITH f AS (UPDATE " + table("invocation") +
                            " SET next_seq = next_seq + 1 WHERE id = $1 AND epoch = $2 AND state = 1 "
                            "RETURNING next_seq - 1 AS seq, cancel_requested), "
                            "i AS (INSERT INTO " + table("record") +
                            " (invocation_id, seq, type, payload, epoch) SELECT $1, f.seq, $3::smallint, $4::bytea, $2 "
                            "FROM f RETURNING seq) SELECT i.seq, f.cancel_requested FROM i, f",
                        parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(type).bytes(payload));
    if (r.rows() != 1) throw lost(owner, "an append");
    return {r.boolean(0, 1), static_cast<std::uint64_t>(r.number(0, 0))};
  }

  checkpoint_reply make_durable(const lease& owner, std::uint64_t seq) override {
    std::lock_guard lock(mutex_);
    result r = db_.exec("SELECT cancel_requested, next_seq FROM " + table("invocation") +
                            " WHERE id = $1 AND epoch = $2 AND state = 1",
                        parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)));
    if (r.rows() != 1) throw lost(owner, "make_durable");
    if (seq >= static_cast<std::uint64_t>(r.number(0, 1)))
      throw std::invalid_argument("durable::postgres::store::make_durable: seq " + std::to_string(seq) +
                                  " was never returned by append");
    return {r.boolean(0, 0), 0};
  }

  [[nodiscard]] journal_record record(const lease& owner, std::uint64_t seq) const override {
    std::lock_guard lock(mutex_);
    result r = db_.exec("SELECT r.type, r.payload FROM " + table("record") + " r JOIN " + table("invocation") +
                            " i ON i.id = r.invocation_id WHERE i.id = $1 AND i.epoch = $2 AND i.state = 1 AND r.seq = $3",
                        parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(static_cast<std::int64_t>(seq)));
    if (r.rows() == 1) return journal_record{static_cast<std::uint8_t>(r.number(0, 0)), to_vector(r.bytes(0, 1))};
    result held = db_.exec("SELECT 1 FROM " + table("invocation") + " WHERE id = $1 AND epoch = $2 AND state = 1",
                           parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)));
    if (held.rows() != 1) throw lost(owner, "a read");
    throw std::out_of_range("durable::postgres::store::record: no record " + std::to_string(seq));
  }

  void finish(const lease& owner, std::uint8_t type, std::span<const std::byte> outcome) override {
    journal::check_append(type, outcome);
    std::lock_guard lock(mutex_);
    result r = db_.exec("UPDATE " + table("invocation") +
                            " SET state = 3, owner = NULL, outcome_type = $3::smallint, outcome = $4::bytea, "
                            "finished_at = now() WHERE id = $1 AND epoch = $2 AND state = 1",
                        parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(type).bytes(outcome));
    if (r.affected() != 1) throw lost(owner, "finish");
  }

  void park(const lease& owner, time_point wake_at) override {
    std::lock_guard lock(mutex_);
    result r = db_.exec("UPDATE " + table("invocation") +
                            " SET state = 2, owner = NULL, ready_at = $3 WHERE id = $1 AND epoch = $2 AND state = 1",
                        parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch)).number(wake_at.time_since_epoch().count()));
    if (r.affected() != 1) throw lost(owner, "park");
  }

  void release(const lease& owner) override {
    std::lock_guard lock(mutex_);
    static_cast<void>(db_.exec("UPDATE " + table("invocation") +
                                   " SET state = 0, owner = NULL WHERE id = $1 AND epoch = $2 AND state = 1",
                               parameters().text(owner.invocation).number(static_cast<std::int64_t>(owner.epoch))));
  }

  [[nodiscard]] std::optional<invocation_view> read(std::string_view id) const override {
    std::lock_guard lock(mutex_);
    return read_locked(id);
  }

  cancel_reply request_cancel(std::string_view id) override {
    std::lock_guard lock(mutex_);
    result r = db_.exec("UPDATE " + table("invocation") +
                            " SET cancel_requested = true WHERE id = $1 AND state <> 3 RETURNING state, function",
                        parameters().text(id));
    if (r.rows() == 0) {
      const auto view = read_locked(id);
      return view ? cancel_reply::finished : cancel_reply::unknown;
    }
    if (r.number(0, 0) == 1) return cancel_reply::requested;
    const std::vector<std::byte> outcome = encode(cancelled_outcome(std::string(id), r.text(0, 1), "the invocation was cancelled"));
    result done = db_.exec("UPDATE " + table("invocation") +
                               " SET state = 3, owner = NULL, outcome_type = $2::smallint, outcome = $3::bytea, "
                               "finished_at = now() WHERE id = $1 AND state IN (0, 2)",
                           parameters().text(id).number(completed_type).bytes(outcome));
    return done.affected() == 1 ? cancel_reply::cancelled : cancel_reply::requested;  // claimed meanwhile
  }

  void wait_for_work(std::chrono::milliseconds at_most) override {
    const auto deadline = std::chrono::steady_clock::now() + at_most;
    std::chrono::milliseconds pause{5};
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        result r = db_.exec("SELECT 1 FROM " + table("invocation") + " WHERE state = 0 OR (state = 2 AND ready_at <= " +
                                now_sql(1) + ") LIMIT 1",
                            now_params(parameters()));
        if (r.rows() != 0) return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds{200});
    }
  }

  std::size_t forget_finished() override {
    std::lock_guard lock(mutex_);
    static_cast<void>(db_.exec("DELETE FROM " + table("record") + " WHERE invocation_id IN (SELECT id FROM " +
                               table("invocation") + " WHERE state = 3)"));
    result r = db_.exec("DELETE FROM " + table("invocation") + " WHERE state = 3");
    return static_cast<std::size_t>(r.affected());
  }

  [[nodiscard]] std::size_t finished_count() const override {
    std::lock_guard lock(mutex_);
    result r = db_.exec("SELECT count(*) FROM " + table("invocation") + " WHERE state = 3");
    return static_cast<std::size_t>(r.number(0, 0));
  }

  /// Drops the schema and everything in it (tests).
  void drop_schema() {
    std::lock_guard lock(mutex_);
    db_.exec_script("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
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

  // Running invocations of workers whose lease expired go back to ready (epoch unchanged: the
  // next claim raises it, which fences the dead worker), and the dead workers are forgotten.
  // One worker at a time does it (a transaction-scoped advisory lock, skipped if taken).
  void reap_locked() {
    db_.exec_script("BEGIN");
    try {
      result mine = db_.exec("SELECT pg_try_advisory_xact_lock(hashtext($1))", parameters().text("durable.reap." + schema_));
      if (mine.boolean(0, 0)) {
        db_.exec("WITH dead AS (DELETE FROM " + table("worker") + " WHERE lease_until < " + now_sql(1) +
                     " RETURNING id) UPDATE " + table("invocation") +
                     " SET state = 0, owner = NULL WHERE state = 1 AND owner IN (SELECT id FROM dead)",
                 now_params(parameters()));
        db_.exec("UPDATE " + table("invocation") + " SET state = 0, owner = NULL WHERE state = 1 AND owner NOT IN (SELECT id FROM " +
                 table("worker") + ")");
      }
      db_.exec_script("COMMIT");
    } catch (...) {
      try {
        db_.exec_script("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
  }

  // The heartbeat: renews the lease every third of it, on a connection of its own (a worker
  // busy with long statements must not lose its lease for it).
  void beat(const std::stop_token& stop) {
    std::optional<connection> own;
    std::mutex m;
    std::unique_lock lock(m);
    while (!stop.stop_requested()) {
      beat_wake_.wait_for(lock, options_.lease / 3, [&] { return stop.stop_requested(); });
      if (stop.stop_requested()) return;
      try {
        if (!own || !own->ok()) own.emplace(options_.connection);
        result r = own->exec("UPDATE " + table("worker") + " SET lease_until = " + now_sql(2) + " + $3 WHERE id = $1 AND lease_until >= " +
                                 now_sql(2),
                             now_params(parameters().text(me_)).number(lease_ns()));
        if (r.affected() != 1) lease_held_.store(false, std::memory_order_release);
      } catch (...) {
        own.reset();  // reconnect at the next beat; the lease runs out meanwhile if the server is gone
      }
    }
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

  [[nodiscard]] ownership_lost lost(const lease& owner, std::string_view what) const {
    return ownership_lost("durable::postgres: " + std::string(what) + " of invocation '" + owner.invocation +
                          "' under epoch " + std::to_string(owner.epoch) +
                          " refused: it was claimed again, released, parked or finished");
  }

  [[nodiscard]] std::vector<journal_record> records_of(std::string_view id) const {
    result r = db_.exec("SELECT type, payload FROM " + table("record") + " WHERE invocation_id = $1 ORDER BY seq",
                        parameters().text(id));
    std::vector<journal_record> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int row = 0; row < r.rows(); ++row)
      out.push_back(journal_record{static_cast<std::uint8_t>(r.number(row, 0)), to_vector(r.bytes(row, 1))});
    return out;
  }

  [[nodiscard]] std::optional<invocation_view> read_locked(std::string_view id) const {
    result r = db_.exec("SELECT function, state, outcome_type, outcome, cancel_requested FROM " + table("invocation") +
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
    db_.exec("SELECT pg_advisory_lock(hashtext($1))", parameters().text("durable.schema." + schema_));
    try {
      db_.exec_script("CREATE SCHEMA IF NOT EXISTS " + schema_);
      result tables = db_.exec("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                               parameters().text(schema_));
      std::vector<std::string> names;
      for (int row = 0; row < tables.rows(); ++row) names.push_back(tables.text(row, 0));
      const bool has_meta = std::find(names.begin(), names.end(), "meta") != names.end();
      if (!names.empty() && !has_meta) {
        throw schema_error("durable::postgres: schema '" + schema_ +
                           "' holds tables that are not durable's (no meta table); choose another schema name");
      }
      if (has_meta) {
        result v = db_.exec("SELECT value FROM " + table("meta") + " WHERE key = 'schema_version'");
        if (v.rows() != 1) throw schema_error("durable::postgres: schema '" + schema_ + "' has a meta table without a schema_version");
        const std::string text = v.text(0, 0);
        const std::int64_t found = std::atoll(text.c_str());
        if (found > schema_version) {
          throw schema_error("durable::postgres: schema '" + schema_ + "' has version " + text +
                             ", newer than this build's " + std::to_string(schema_version) +
                             "; upgrade durable, or use another schema");
        }
        if (found < 1) throw schema_error("durable::postgres: schema '" + schema_ + "' has an unreadable version '" + text + "'");
      } else {
        create_tables();
      }
    } catch (...) {
      try {
        db_.exec("SELECT pg_advisory_unlock(hashtext($1))", parameters().text("durable.schema." + schema_));
      } catch (...) {
      }
      throw;
    }
    db_.exec("SELECT pg_advisory_unlock(hashtext($1))", parameters().text("durable.schema." + schema_));
  }

  void create_tables() {
    const std::string s = schema_;
    db_.exec_script(
        "BEGIN;"
        "CREATE TABLE " + s + ".meta (key text PRIMARY KEY, value text NOT NULL);"
        "CREATE TABLE " + s + ".invocation ("
        "  id text PRIMARY KEY, function text NOT NULL,"
        "  state smallint NOT NULL,"  // 0 ready, 1 running, 2 parked, 3 finished (stored_state)
        "  owner text, epoch bigint NOT NULL DEFAULT 0, next_seq bigint NOT NULL DEFAULT 1,"
        "  ready_at bigint, claims integer NOT NULL DEFAULT 0, cancel_requested boolean NOT NULL DEFAULT false,"
        "  started bytea NOT NULL, outcome_type smallint, outcome bytea,"
        "  created bigserial, created_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz"
        ") WITH (fillfactor = 80);"
        "CREATE INDEX invocation_ready ON " + s + ".invocation (created) WHERE state = 0;"
        "CREATE INDEX invocation_parked ON " + s + ".invocation (ready_at) WHERE state = 2;"
        "CREATE INDEX invocation_owned ON " + s + ".invocation (owner) WHERE state = 1;"
        "CREATE INDEX invocation_done ON " + s + ".invocation (finished_at) WHERE state = 3;"
        "CREATE TABLE " + s + ".worker (id text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL,"
        "  started_at timestamptz NOT NULL DEFAULT now(), lease_until bigint NOT NULL);"
        "CREATE TABLE " + s + ".record ("
        "  invocation_id text NOT NULL, seq bigint NOT NULL, type smallint NOT NULL, payload bytea NOT NULL,"
        "  epoch bigint NOT NULL, PRIMARY KEY (invocation_id, seq));"
        "INSERT INTO " + s + ".meta VALUES ('schema_version', '" + std::to_string(schema_version) + "');"
        "COMMIT;");
  }

  store_options options_;
  std::string schema_;
  std::string me_;
  mutable std::mutex mutex_;
  mutable connection db_;  // under mutex_
  std::atomic<bool> lease_held_{true};
  std::condition_variable_any beat_wake_;
  std::jthread heartbeat_;  // last: started once everything else is ready, stopped first
};

}  // namespace durable::postgres
