// The PostgreSQL store against hand-written libpq loops, on the same server, in one binary:
//   - steps: a journaled invocation of 20 steps (each step one fenced checkpoint, the
//     `every_record` way) against a loop of the same statements by hand (create, 20 fenced
//     inserts, finish);
//   - batched: 16 invocations of 20 steps at once, on 16 runtime threads, in the batched
//     commit mode, against a loop of plain INSERT + UPDATE statements (autocommit), one pair per
//     step;
//   - claims: `store::claim(1)` against a hand-written `FOR UPDATE SKIP LOCKED` claim loop,
//     both taking from a table of ready invocations.
// The server is $DURABLE_PG_URL (scripts/with-pg-server starts one); without it, every benchmark
// is skipped with that message.
#include <benchmark/benchmark.h>

#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/postgres/store.hpp>

namespace {

constexpr int steps_per_invocation = 20;

const char* server() { return std::getenv("DURABLE_PG_URL"); }

std::string schema_name(const char* what) { return std::string("bench_") + what + "_" + std::to_string(::getpid()); }

inline constexpr durable::function bench_step{"bench.step", [](int i) -> durable::durable_task<int> { co_return i; }};
inline constexpr durable::function bench_steps{"bench.steps", [](int n) -> durable::durable_task<int> {
  int sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await bench_step(i);
  co_return sum;
}};

void steps_durable(benchmark::State& state) {
  if (server() == nullptr) return state.SkipWithError("DURABLE_PG_URL is not set (scripts/with-pg-server)");
  durable::postgres::store store({.connection = server(), .schema = schema_name("steps")});
  durable::runtime rt({.workers = 0});
  durable::invocations invocations{rt, store};
  invocations.register_function(bench_step);
  invocations.register_function(bench_steps);
  std::int64_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(invocations.start("steps-" + std::to_string(n++), bench_steps, steps_per_invocation).get());
  }
  state.SetItemsProcessed(state.iterations() * steps_per_invocation);
  store.drop_schema();
}

// The baseline: what the store sends for an invocation, written by hand, each statement on its
// own (autocommit), parameters as text and results in binary, as the store does.
class raw_connection {
 public:
  explicit raw_connection(const char* url) : c_(PQconnectdb(url)) { script("SET client_min_messages = warning"); }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;
  ~raw_connection() { PQfinish(c_); }
  bool exec(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                               nullptr, 1);
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  }
  void script(const std::string& sql) { PQclear(PQexec(c_, sql.c_str())); }

 private:
  PGconn* c_;
};

void steps_libpq_loop(benchmark::State& state) {
  if (server() == nullptr) return state.SkipWithError("DURABLE_PG_URL is not set (scripts/with-pg-server)");
  const std::string s = schema_name("raw_steps");
  { durable::postgres::store made({.connection = server(), .schema = s}); }  // the same tables
  raw_connection db(server());
  const std::string create = "INSERT INTO " + s + ".invocation (id, function, state, owner, epoch, claims, started) "
                             "VALUES ($1, 'bench.steps', 1, 'me', 1, 1, '\\x00'::bytea) ON CONFLICT (id) DO NOTHING RETURNING epoch";
  const std::string step = "WITH f AS (UPDATE " + s + ".invocation SET next_seq = next_seq + 1, claims = 0 "
                           "WHERE id = $1 AND epoch = 1 AND state = 1 RETURNING next_seq - 1 AS seq, cancel_requested), "
                           "i AS (INSERT INTO " + s + ".record (invocation_id, seq, type, payload, epoch) "
                           "SELECT $1, f.seq, 2::smallint, $2::bytea, 1 FROM f RETURNING seq) "
                           "SELECT i.seq, f.cancel_requested FROM i, f";
  const std::string finish = "UPDATE " + s + ".invocation SET state = 3, owner = NULL, outcome_type = 2::smallint, "
                             "outcome = $2::bytea, finished_at = 0 WHERE id = $1 AND epoch = 1 AND state = 1";
  std::int64_t n = 0;
  for (auto _ : state) {
    const std::string id = "steps-" + std::to_string(n++);
    bool ok = db.exec(create, {id});
    for (int i = 0; i < steps_per_invocation; ++i) ok = db.exec(step, {id, "\\x0102030405060708090a0b0c0d0e0f10"}) && ok;
    ok = db.exec(finish, {id, "\\x0102030405060708"}) && ok;
    if (!ok) return state.SkipWithError("a statement failed");
  }
  state.SetItemsProcessed(state.iterations() * steps_per_invocation);
  db.script("DROP SCHEMA " + s + " CASCADE");
}

constexpr int invocations_at_once = 16;

void batched_durable(benchmark::State& state) {
  if (server() == nullptr) return state.SkipWithError("DURABLE_PG_URL is not set (scripts/with-pg-server)");
  durable::postgres::store store(
      {.connection = server(), .schema = schema_name("batched"), .commit = durable::postgres::commit_mode::batched});
  durable::runtime rt({.workers = invocations_at_once});  // a thread per invocation waiting on its checkpoint
  durable::invocations invocations{rt, store};
  invocations.register_function(bench_step);
  invocations.register_function(bench_steps);
  std::int64_t n = 0;
  for (auto _ : state) {
    std::vector<durable::invocation<int>> running;
    for (int i = 0; i < invocations_at_once; ++i)
      running.push_back(invocations.start("batched-" + std::to_string(n++), bench_steps, steps_per_invocation));
    for (auto& r : running) benchmark::DoNotOptimize(r.get());
  }
  state.SetItemsProcessed(state.iterations() * invocations_at_once * steps_per_invocation);
  store.drop_schema();
}

void batched_insert_update_loop(benchmark::State& state) {
  if (server() == nullptr) return state.SkipWithError("DURABLE_PG_URL is not set (scripts/with-pg-server)");
  const std::string s = schema_name("raw_batched");
  raw_connection db(server());
  db.script("CREATE SCHEMA " + s + "; CREATE TABLE " + s + ".step (invocation text, seq bigint, payload bytea, "
            "PRIMARY KEY (invocation, seq)); CREATE TABLE " + s + ".progress (invocation text PRIMARY KEY, next_seq bigint)");
  const std::string insert = "INSERT INTO " + s + ".step VALUES ($1, $2, $3::bytea)";
  const std::string update = "UPDATE " + s + ".progress SET next_seq = $2 WHERE invocation = $1";
  std::int64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < invocations_at_once; ++i) {
      const std::string id = "batched-" + std::to_string(n++);
      bool ok = db.exec("INSERT INTO " + s + ".progress VALUES ($1, 1)", {id});
      for (int k = 1; k <= steps_per_invocation; ++k) {
        ok = db.exec(insert, {id, std::to_string(k), "\\x0102030405060708090a0b0c0d0e0f10"}) && ok;
        ok = db.exec(update, {id, std::to_string(k + 1)}) && ok;
      }
      if (!ok) return state.SkipWithError("a statement failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * invocations_at_once * steps_per_invocation);
  db.script("DROP SCHEMA " + s + " CASCADE");
}

// Ready invocations to claim from, refilled outside the timing when they run out.
void refill(raw_connection& db, const std::string& s, std::int64_t& next, int count) {
  db.script("INSERT INTO " + s + ".invocation (id, function, state, epoch, started) SELECT 'c-' || g, 'bench.steps', 0, 0, "
            "'\\x00'::bytea FROM generate_series(" + std::to_string(next) + ", " + std::to_string(next + count - 1) + ") g");
  next += count;
}

constexpr int claim_pool = 5000;

// Runs `claim_one()` (false: it failed) once per iteration, refilling the table of ready
// invocations outside the timing whenever `claim_pool` were taken.
template <class ClaimOne>
void claim_from_pool(benchmark::State& state, raw_connection& db, const std::string& s, ClaimOne claim_one) {
  std::int64_t next = 0;
  int left = 0;
  for (auto _ : state) {
    if (left == 0) {
      state.PauseTiming();
      refill(db, s, next, claim_pool);
      left = claim_pool;
      state.ResumeTiming();
    }
    if (!claim_one()) return state.SkipWithError("the claim failed");
    --left;
  }
  state.SetItemsProcessed(state.iterations());
}

void claims_durable(benchmark::State& state) {
  if (server() == nullptr) return state.SkipWithError("DURABLE_PG_URL is not set (scripts/with-pg-server)");
  const std::string s = schema_name("claims");
  durable::postgres::store store({.connection = server(), .schema = s});
  raw_connection db(server());
  claim_from_pool(state, db, s, [&] { return store.claim(1).size() == 1; });
  store.drop_schema();
}

void claims_skip_locked_loop(benchmark::State& state) {
  if (server() == nullptr) return state.SkipWithError("DURABLE_PG_URL is not set (scripts/with-pg-server)");
  const std::string s = schema_name("raw_claims");
  { durable::postgres::store made({.connection = server(), .schema = s}); }
  raw_connection db(server());
  const std::string claim = "UPDATE " + s + ".invocation AS i SET state = 1, owner = $1, epoch = i.epoch + 1, "
                            "claims = i.claims + 1 FROM (SELECT id FROM " + s + ".invocation WHERE state = 0 "
                            "ORDER BY created LIMIT 1 FOR UPDATE SKIP LOCKED) AS due WHERE i.id = due.id "
                            "RETURNING i.id, i.epoch, i.started";
  claim_from_pool(state, db, s, [&] { return db.exec(claim, {"me"}); });
  db.script("DROP SCHEMA " + s + " CASCADE");
}

}  // namespace

BENCHMARK(steps_durable)->Name("steps/durable_every_record")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(steps_libpq_loop)->Name("steps/baseline_libpq_loop")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(batched_durable)->Name("batched/durable_16_at_once")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(batched_insert_update_loop)->Name("batched/baseline_insert_update_loop")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(claims_durable)->Name("claims/durable")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(claims_skip_locked_loop)->Name("claims/baseline_skip_locked_loop")->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
