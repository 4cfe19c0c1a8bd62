// Journaled invocations over the PostgreSQL store: what one worker started, another resumes or
// reads, with every completed step run once.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/postgres/store.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "postgres_support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;

namespace {

int step_runs[2] = {0, 0};
inline constexpr durable::function step{"pg.step", [](int i, std::string s) -> durable_task<std::string> {
  ++step_runs[i];
  co_return s + std::to_string(i);
}};
inline constexpr durable::function flow{"pg.flow", [](std::string in) -> durable_task<std::string> {
  const std::string a = co_await step(0, in);
  co_await durable::sleep_for(1h);
  co_return co_await step(1, a);
}};

void drive_for(durable::runtime& rt, std::chrono::nanoseconds d) {
  auto tick = [](std::chrono::nanoseconds how_long) -> durable_task<> { co_await durable::sleep_for(how_long); };
  rt.run(tick(d));
}

/// One worker process: a store on the shared schema, a runtime on a manual clock, invocations.
struct worker {
  explicit worker(const std::string& schema, durable::time_point start = {})
      : worker(durable::postgres::store_options{.connection = postgres_support::connection_string(), .schema = schema},
               start) {}
  worker(durable::postgres::store_options options, durable::time_point start) : clock(start), store(std::move(options)) {
    journaled.register_function(step);
    journaled.register_function(flow);
  }
  durable::manual_clock clock;
  durable::postgres::store store;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, store};
};

struct schema_owner {
  std::string name = postgres_support::fresh_schema("i");
  ~schema_owner() {
    try {
      durable::postgres::connection(postgres_support::connection_string()).exec_script("DROP SCHEMA IF EXISTS " + name + " CASCADE");
    } catch (...) {
    }
  }
};

}  // namespace

TEST_CASE("an invocation one worker ran is read by another, and runs nothing again", "[postgres][invocations]") {
  step_runs[0] = step_runs[1] = 0;
  schema_owner schema;
  worker a(schema.name);
  CHECK(a.journaled.start("order-1", flow, std::string("x")).get() == "x01");
  worker b(schema.name);
  CHECK(b.journaled.start("order-1", flow, std::string("other")).get() == "x01");
  CHECK(b.journaled.finished_invocations() == 1);
  CHECK(step_runs[0] == 1);
  CHECK(step_runs[1] == 1);
}

TEST_CASE("a worker that stopped half way is resumed by another from its recorded steps", "[postgres][invocations]") {
  step_runs[0] = step_runs[1] = 0;
  schema_owner schema;
  {
    worker a(schema.name);
    static_cast<void>(a.journaled.start("order-2", flow, std::string("y")));
    drive_for(a.rt, 1min);  // step 0 done; the flow sleeps for an hour
    REQUIRE(step_runs[0] == 1);
  }  // the worker stops: its invocation goes back to the database, ready
  worker b(schema.name, durable::time_point{} + 10min);
  b.journaled.recover();
  CHECK(b.journaled.start("order-2", flow, std::string("ignored")).get() == "y01");
  CHECK(step_runs[0] == 1);
  CHECK(step_runs[1] == 1);
  CHECK(b.clock.now() == durable::time_point{} + 1h);  // the recorded wake-up time held
}

TEST_CASE("a cancel from another worker ends an invocation nobody runs, for good", "[postgres][invocations][cancel]") {
  step_runs[0] = step_runs[1] = 0;
  schema_owner schema;
  {
    worker a(schema.name);
    static_cast<void>(a.journaled.start("order-3", flow, std::string("z")));
    drive_for(a.rt, 1min);
  }
  worker b(schema.name);
  CHECK(b.journaled.cancel("order-3"));
  b.journaled.recover();
  drive_for(b.rt, 2h);
  CHECK(step_runs[1] == 0);
  CHECK_THROWS_AS(b.journaled.start("order-3", flow, std::string("z")).get(), durable::failure);
  CHECK(b.store.read("order-3")->state == durable::stored_state::finished);
}

TEST_CASE("a worker whose invocation was taken over writes nothing more, and its handle gives the new owner's result",
          "[postgres][invocations]") {
  step_runs[0] = step_runs[1] = 0;
  schema_owner schema;
  durable::manual_clock store_clock;  // the database's clock, as both workers' stores see it
  const durable::postgres::store_options options{.connection = postgres_support::connection_string(),
                                                 .schema = schema.name,
                                                 .now = [&store_clock] { return store_clock.now(); },
                                                 .lease = 1s};
  worker a(options, durable::time_point{});
  auto handle = a.journaled.start("order-4", flow, std::string("w"));
  drive_for(a.rt, 1min);  // step 0 done; the flow sleeps for an hour
  store_clock.advance(2s);  // worker a's lease runs out (it stopped heartbeating in time)
  worker b(options, durable::time_point{} + 10min);
  b.journaled.recover();  // takes the invocation over, epoch + 1
  CHECK(b.journaled.start("order-4", flow, std::string("w")).get() == "w01");
  drive_for(a.rt, 2h);  // worker a wakes up: its next write is refused
  CHECK(handle.get() == "w01");  // the outcome the store holds, not a journal failure
  CHECK(step_runs[0] == 1);
  durable::postgres::connection db(options.connection);
  const auto epochs = db.exec("SELECT DISTINCT epoch FROM " + schema.name + ".record WHERE invocation_id = 'order-4'");
  CHECK(epochs.rows() == 2);  // worker a's step 0 (epoch 1) and worker b's step 1 (epoch 2): nothing later of a
  CHECK(db.exec("SELECT max(epoch) FROM " + schema.name + ".record WHERE invocation_id = 'order-4' AND seq > 1")
            .number(0, 0) == 2);
}

namespace {

std::atomic<int> served_runs{0};
inline constexpr durable::function served{"pg.served", [](int n) -> durable_task<int> {
  ++served_runs;
  co_return n * 2;
}};

}  // namespace

TEST_CASE("submitted invocations run on a worker that serves the store, and their handles read the results", "[postgres][invocations]") {
  served_runs = 0;
  schema_owner schema;
  const durable::postgres::store_options options{.connection = postgres_support::connection_string(), .schema = schema.name};
  // The submitter runs nothing itself.
  durable::postgres::store submitter_store(options);
  durable::runtime submitter_rt({.workers = 1});
  durable::invocations submitter{submitter_rt, submitter_store};
  submitter.register_function(served);
  std::vector<durable::invocation<int>> handles;
  for (int i = 0; i < 6; ++i) handles.push_back(submitter.submit("job-" + std::to_string(i), served, i));
  CHECK(served_runs == 0);
  CHECK(submitter_store.read("job-0")->state == durable::stored_state::ready);

  durable::postgres::store worker_store(options);
  durable::runtime worker_rt({.workers = 2});
  durable::invocations worker{worker_rt, worker_store};
  worker.register_function(served);
  std::stop_source stop;
  std::size_t taken = 0;
  std::thread serving([&] { taken = worker.serve(stop.get_token(), {.capacity = 2, .poll = 20ms}); });
  for (int i = 0; i < 6; ++i) CHECK(handles[static_cast<std::size_t>(i)].get() == 2 * i);
  stop.request_stop();
  serving.join();
  CHECK(taken == 6);
  CHECK(served_runs == 6);
}

TEST_CASE("serve refuses a runtime without worker threads", "[postgres][invocations]") {
  schema_owner schema;
  worker w(schema.name);  // a manual clock: no workers
  std::stop_source stop;
  CHECK_THROWS_AS(w.journaled.serve(stop.get_token()), std::logic_error);
}

namespace {

std::atomic<int> before_sleep{0};
std::atomic<int> after_sleep{0};
inline constexpr durable::function count_before{"pg.before", []() -> durable_task<int> { co_return ++before_sleep; }};
inline constexpr durable::function count_after{"pg.after", []() -> durable_task<int> { co_return ++after_sleep; }};
inline constexpr durable::function sleeper{"pg.sleeper", [](int ms) -> durable_task<int> {
  const int a = co_await count_before();
  co_await durable::sleep_for(std::chrono::milliseconds(ms));
  co_return a * 10 + co_await count_after();
}};

inline constexpr durable::function inner_nap{"pg.inner_nap", [](int ms) -> durable_task<int> {
  co_await durable::sleep_for(std::chrono::milliseconds(ms));
  co_return 7;
}};
inline constexpr durable::function nested_sleeper{"pg.nested_sleeper", [](int ms) -> durable_task<int> {
  co_return co_await inner_nap(ms);
}};

/// A process on the schema with the sleeping functions registered, its runtime on `threads`.
struct sleeping_process {
  sleeping_process(const std::string& schema, unsigned threads)
      : store({.connection = postgres_support::connection_string(), .schema = schema}), rt({.workers = threads}) {
    invocations.register_function(count_before);
    invocations.register_function(count_after);
    invocations.register_function(sleeper);
    invocations.register_function(inner_nap);
    invocations.register_function(nested_sleeper);
  }
  durable::postgres::store store;
  durable::runtime rt;
  durable::invocations invocations{rt, store};
};

}  // namespace

TEST_CASE("a long sleep parks the invocation in the database, and a serving worker takes it up when it ends", "[postgres][invocations]") {
  before_sleep = after_sleep = 0;
  schema_owner schema;
  sleeping_process submitter(schema.name, 1);
  durable::invocation<int> handle = submitter.invocations.submit("nap", sleeper, 1500);

  sleeping_process worker(schema.name, 2);
  std::stop_source stop;
  std::size_t taken = 0;
  // Real time: the database's clock decides when a parked invocation is due.
  std::thread serving([&] {
    taken = worker.invocations.serve(stop.get_token(), {.capacity = 4, .poll = 20ms, .park_after = 500ms});
  });
  bool parked = false;
  for (int i = 0; i < 500 && !parked; ++i) {
    parked = submitter.store.read("nap")->state == durable::stored_state::parked;
    if (!parked) std::this_thread::sleep_for(2ms);
  }
  CHECK(parked);
  CHECK(before_sleep == 1);
  CHECK(after_sleep == 0);
  CHECK(handle.get() == 11);
  stop.request_stop();
  serving.join();
  CHECK(taken == 2);  // claimed to start, and again when the sleep ended
  CHECK(before_sleep == 1);
  CHECK(after_sleep == 1);
}

TEST_CASE("a sleep shorter than park_after, or inside a call, keeps the invocation running here", "[postgres][invocations]") {
  schema_owner schema;
  sleeping_process process(schema.name, 2);
  std::stop_source stop;
  std::size_t taken = 0;
  std::thread serving([&] {
    taken = process.invocations.serve(stop.get_token(), {.capacity = 4, .poll = 20ms, .park_after = 100ms});
  });
  before_sleep = after_sleep = 0;
  CHECK(process.invocations.start("short", sleeper, 50).get() == 11);       // shorter than park_after
  CHECK(process.invocations.start("nested", nested_sleeper, 300).get() == 7);  // longer, but inside a call
  stop.request_stop();
  serving.join();
  CHECK(taken == 0);  // started here, never parked, never claimed
}
