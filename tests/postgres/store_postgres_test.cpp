// What the PostgreSQL store does beyond the contract: fencing between two workers, taking over
// a dead worker's invocations, and refusing what it cannot use (a newer or foreign schema, an
// unreachable server).
#include <catch2/catch.hpp>

#include <durable/codec.hpp>
#include <durable/journal_records.hpp>
#include <durable/postgres/store.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "postgres_support.hpp"
#include "store_contract_support.hpp"

using namespace std::chrono_literals;
using store_contract::completed_type;
using store_contract::completion_bytes;
using store_contract::decoded;
using store_contract::started_bytes;

namespace {

/// Two workers (two stores) on one schema, on one manual clock, with a one-second lease.
struct two_workers {
  store_contract::test_clock time;
  std::string schema = postgres_support::fresh_schema("w");
  durable::postgres::store_options options{.connection = postgres_support::connection_string(),
                                           .schema = schema,
                                           .now = time.now_function(),
                                           .lease = 1s};
  std::unique_ptr<durable::postgres::store> first = std::make_unique<durable::postgres::store>(options);
  std::unique_ptr<durable::postgres::store> second = std::make_unique<durable::postgres::store>(options);
  two_workers() = default;
  two_workers(const two_workers&) = delete;
  two_workers& operator=(const two_workers&) = delete;
  ~two_workers() {
    try {
      second->drop_schema();
    } catch (...) {
    }
  }
};

}  // namespace

TEST_CASE("a worker whose lease expired is fenced: its next write fails and nothing of it lands", "[postgres]") {
  two_workers w;
  const durable::lease old = w.first->start("a", "flow", started_bytes("a")).claimed->owner;
  CHECK(w.first->append(old, completed_type, completion_bytes("a", {0, 0}, 1)) == 1);
  CHECK(w.second->claim(10).empty());  // held, and the lease is fresh
  w.time.clock.advance(2s);            // the first worker's lease runs out
  const auto taken = w.second->claim(10);
  REQUIRE(taken.size() == 1);
  const durable::lease current = taken[0].owner;
  CHECK(current.epoch == old.epoch + 1);
  CHECK(taken[0].records.size() == 1);
  CHECK(w.second->append(current, completed_type, completion_bytes("a", {0, 1}, 2)) == 2);
  CHECK_THROWS_AS(w.first->append(old, completed_type, completion_bytes("a", {0, 2}, 3)), durable::ownership_lost);
  CHECK_THROWS_AS(w.first->finish(old, completed_type, completion_bytes("a", {0}, 4)), durable::ownership_lost);
  CHECK(w.second->append(current, completed_type, completion_bytes("a", {0, 2}, 5)) == 3);
  w.second->release(current);
  const auto again = w.second->claim(1);
  REQUIRE(again.size() == 1);
  REQUIRE(again[0].records.size() == 3);
  CHECK(decoded(again[0].records[1]).value == durable::encode(std::int64_t{2}));
  CHECK(decoded(again[0].records[2]).value == durable::encode(std::int64_t{5}));
}

TEST_CASE("a worker that stops hands its invocations to the others at once", "[postgres]") {
  two_workers w;
  static_cast<void>(w.first->start("a", "flow", started_bytes("a")));
  w.first.reset();  // a graceful stop: no lease to wait for
  const auto taken = w.second->claim(10);
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].owner.invocation == "a");
}

TEST_CASE("a live worker's heartbeat keeps its invocations from being taken", "[postgres]") {
  two_workers w;
  static_cast<void>(w.first->start("a", "flow", started_bytes("a")));
  durable::postgres::connection db(w.options.connection);
  // Half a lease at a time; after each step, the first worker's heartbeat (every third of the
  // lease, real time) renews its lease to the new "now" before the other worker looks.
  for (int i = 0; i < 4; ++i) {
    w.time.clock.advance(500ms);
    const std::int64_t renewed_to = (w.time.clock.now() + 1s).time_since_epoch().count();
    const auto until = std::chrono::steady_clock::now() + 10s;  // bounds the wait for one heartbeat
    std::int64_t lease_until = 0;
    while (std::chrono::steady_clock::now() < until) {
      lease_until = db.exec("SELECT lease_until FROM " + w.schema + ".worker WHERE id = $1",
                            durable::postgres::parameters().text(w.first->worker()))
                        .number(0, 0);
      if (lease_until >= renewed_to) break;
      std::this_thread::sleep_for(20ms);
    }
    REQUIRE(lease_until >= renewed_to);
    CHECK(w.second->claim(10).empty());
  }
  CHECK(w.first->lease_held());
}

TEST_CASE("a schema of a newer version is refused with a clear error, and left as it was", "[postgres]") {
  const std::string schema = postgres_support::fresh_schema("v");
  durable::postgres::store_options options{.connection = postgres_support::connection_string(), .schema = schema};
  {
    durable::postgres::store made(options);
    durable::postgres::connection db(options.connection);
    db.exec("UPDATE " + schema + ".meta SET value = '99' WHERE key = 'schema_version'");
  }
  try {
    durable::postgres::store newer(options);
    FAIL("a newer schema was accepted");
  } catch (const durable::postgres::schema_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("version 99") && Catch::Contains("newer than this build's " + std::to_string(durable::postgres::schema_version)));
  }
  durable::postgres::connection db(options.connection);
  CHECK(db.exec("SELECT value FROM " + schema + ".meta WHERE key = 'schema_version'").text(0, 0) == "99");
  db.exec_script("DROP SCHEMA " + schema + " CASCADE");
}

TEST_CASE("a schema holding tables that are not durable's is refused", "[postgres]") {
  const std::string schema = postgres_support::fresh_schema("f");
  durable::postgres::connection db(postgres_support::connection_string());
  db.exec_script("CREATE SCHEMA " + schema + "; CREATE TABLE " + schema + ".orders (id int)");
  CHECK_THROWS_WITH(durable::postgres::store({.connection = postgres_support::connection_string(), .schema = schema}),
                    Catch::Contains("not durable's"));
  CHECK(db.exec("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                durable::postgres::parameters().text(schema))
            .number(0, 0) == 1);
  db.exec_script("DROP SCHEMA " + schema + " CASCADE");
}

TEST_CASE("a bad schema name is refused before anything is sent", "[postgres]") {
  CHECK_THROWS_AS(durable::postgres::store({.connection = postgres_support::connection_string(), .schema = "x; DROP"}),
                  std::invalid_argument);
}

TEST_CASE("an unreachable server fails after a bounded, reported retry", "[postgres]") {
  std::vector<std::string> reported;
  const auto started = std::chrono::steady_clock::now();
  try {
    durable::postgres::store({.connection = "host=127.0.0.1 port=1 connect_timeout=2",
                              .connect_attempts = 3,
                              .on_connect_retry = [&](const std::string& what) { reported.push_back(what); }});
    FAIL("connected to a closed port");
  } catch (const durable::postgres::database_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("cannot connect") && Catch::Contains("port=1"));
    CHECK(e.connection_lost());
  }
  CHECK(reported.size() == 2);
  CHECK_THAT(reported.at(0), Catch::Contains("try 2 of 3"));
  CHECK(std::chrono::steady_clock::now() - started < 30s);
}

TEST_CASE("a poison pill, claimed too often without progress, is finished as failed instead of run again", "[postgres]") {
  two_workers w;
  w.options.max_claims = 2;
  auto third = std::make_unique<durable::postgres::store>(w.options);
  static_cast<void>(third->start("a", "flow", started_bytes("a")));  // claim 1 (the start)
  third.reset();                                                       // a graceful stop: not a failed claim
  auto taken = w.second->claim(10);                                    // claim 1
  REQUIRE(taken.size() == 1);
  auto fourth = std::make_unique<durable::postgres::store>(w.options);
  w.time.clock.advance(2s);                                            // the second and first workers "die"
  REQUIRE(fourth->claim(10).size() == 1);                              // claim 2
  w.time.clock.advance(2s);                                            // the fourth "dies" too
  auto fifth = std::make_unique<durable::postgres::store>(w.options);
  CHECK(fifth->claim(10).empty());                                     // a third claim would pass max_claims
  const auto view = fifth->read("a");
  REQUIRE(view);
  CHECK(view->state == durable::stored_state::finished);
  const auto outcome = decoded(*view->outcome);
  CHECK(outcome.code == durable::status::permanent_error);
  CHECK(outcome.reason == durable::failure_reason::attempts_exhausted);
  CHECK_THAT(outcome.message, Catch::Contains("poison pill") && Catch::Contains("claimed 2 times"));
}

TEST_CASE("a stored record resets the count of claims without progress", "[postgres]") {
  two_workers w;
  w.options.max_claims = 2;
  auto a = std::make_unique<durable::postgres::store>(w.options);
  const durable::lease first = a->start("a", "flow", started_bytes("a")).claimed->owner;  // claim 1
  CHECK(a->checkpoint(first, completed_type, completion_bytes("a", {0, 0}, 1)).seq == 1); // progress
  w.time.clock.advance(2s);
  auto b = std::make_unique<durable::postgres::store>(w.options);
  REQUIRE(b->claim(10).size() == 1);  // claim 1 again, not 2
  w.time.clock.advance(2s);
  auto c = std::make_unique<durable::postgres::store>(w.options);
  CHECK(c->claim(10).size() == 1);  // claim 2: still allowed
}

TEST_CASE("finished invocations are deleted a batch at a time once past their retention", "[postgres]") {
  two_workers w;
  w.options.retention = 1h;
  w.options.retention_batch = 2;
  durable::postgres::store s(w.options);
  for (const char* id : {"a", "b", "c"}) {
    const durable::lease l = s.start(id, "flow", started_bytes(id)).claimed->owner;
    s.checkpoint(l, completed_type, completion_bytes(id, {0, 0}, 1));
    s.finish(l, completed_type, completion_bytes(id, {0}, 2));
  }
  CHECK_FALSE(s.housekeeping());  // not yet past the retention
  CHECK(s.finished_count() == 3);
  w.time.clock.advance(2h);
  const auto swept = s.housekeeping();
  REQUIRE(swept);
  CHECK_THAT(*swept, Catch::Contains("deleted 2 finished invocations"));
  CHECK(s.finished_count() == 1);
  CHECK(s.housekeeping());  // a full batch: the next sweep is due at once
  CHECK(s.finished_count() == 0);
  CHECK_FALSE(s.read("a"));
  durable::postgres::connection db(w.options.connection);
  CHECK(db.exec("SELECT count(*) FROM " + w.schema + ".record").number(0, 0) == 0);  // their records too
}

TEST_CASE("a schema of version 1 is migrated to the current version, keeping what it holds", "[postgres]") {
  two_workers w;
  const durable::lease l = w.first->start("a", "flow", started_bytes("a")).claimed->owner;
  w.first->checkpoint(l, completed_type, completion_bytes("a", {0, 0}, 7));
  w.first->finish(l, completed_type, completion_bytes("a", {0}, 8));
  durable::postgres::connection db(w.options.connection);
  // Back to what version 1 looked like.
  db.exec_script("ALTER TABLE " + w.schema + ".record DROP COLUMN written_at;"
                 "ALTER TABLE " + w.schema + ".invocation ALTER COLUMN finished_at TYPE timestamptz USING now();"
                 "UPDATE " + w.schema + ".meta SET value = '1' WHERE key = 'schema_version'");
  durable::postgres::store reopened(w.options);
  CHECK(db.exec("SELECT value FROM " + w.schema + ".meta WHERE key = 'schema_version'").text(0, 0) ==
        std::to_string(durable::postgres::schema_version));
  CHECK(db.exec("SELECT count(*) FROM " + w.schema + ".record WHERE written_at IS NOT NULL").number(0, 0) == 1);
  const auto view = reopened.read("a");
  REQUIRE(view);
  CHECK(view->state == durable::stored_state::finished);
  CHECK(decoded(*view->outcome).value == durable::encode(std::int64_t{8}));
}

TEST_CASE("batched checkpoints of many threads land, each fenced on its own", "[postgres]") {
  two_workers w;
  w.options.commit = durable::postgres::commit_mode::batched;
  durable::postgres::store s(w.options);
  constexpr int threads = 8;
  constexpr int records = 25;
  std::vector<durable::lease> leases;
  for (int t = 0; t < threads; ++t) {
    const std::string id = "inv-" + std::to_string(t);
    leases.push_back(s.start(id, "flow", started_bytes(id)).claimed->owner);
  }
  // A stale lease among them: refused, and the others land.
  durable::lease stale = leases[0];
  stale.epoch += 7;
  std::atomic<int> refused{0};
  std::atomic<int> out_of_order{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      const durable::lease& owner = leases[static_cast<std::size_t>(t)];
      try {
      for (int k = 1; k <= records; ++k) {
        const auto reply = s.checkpoint(owner, completed_type, completion_bytes(owner.invocation, {0, static_cast<std::uint32_t>(k)}, k));
        if (reply.seq != static_cast<std::uint64_t>(k)) ++out_of_order;  // seqs stay in order per invocation
        if (t == 0) {
          try {
            static_cast<void>(s.checkpoint(stale, completed_type, completion_bytes(owner.invocation, {9}, 0)));
          } catch (const durable::ownership_lost&) {
            ++refused;
          }
        }
      }
      } catch (const std::exception& e) {
        std::lock_guard lock(errors_mutex);
        errors.push_back(e.what());
      }
    });
  }
  for (std::thread& t : writers) t.join();
  CHECK(errors == std::vector<std::string>{});
  CHECK(refused == records);
  CHECK(out_of_order == 0);
  durable::postgres::connection db(w.options.connection);
  CHECK(db.exec("SELECT count(*) FROM " + w.schema + ".record").number(0, 0) == threads * records);
  const auto again = w.second->read("inv-3");
  REQUIRE(again);
  CHECK(again->state == durable::stored_state::running);
}
