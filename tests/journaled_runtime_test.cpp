// Journaled invocations across a simulated crash: the runtime is destroyed while an invocation
// is suspended (in a sleep or a retry wait), and a NEW runtime on the same journal recovers it.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/file_journal.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <tuple>
#include <vector>

#include "journal_support.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;

namespace {

/// Drives a runtime on a manual clock for `d` of virtual time: whatever is ready runs, and an
/// invocation waiting for a later time stays suspended (the "crash" is destroying the runtime).
void drive_for(durable::runtime& rt, std::chrono::nanoseconds d) {
  auto tick = [](std::chrono::nanoseconds how_long) -> durable_task<> { co_await durable::sleep_for(how_long); };
  rt.run(tick(d));
}

const durable::invocation_summary& summary_of(const durable::journal_summary& s, const std::string& id) {
  return s.invocations.at(id);
}

// ---- a flow of three steps with a long sleep in the middle ----
int step_runs[3] = {0, 0, 0};
inline constexpr durable::function step{"jr.step", [](int i, std::string s) -> durable_task<std::string> {
  ++step_runs[i];
  co_return s + std::to_string(i);
}};
inline constexpr durable::function flow{"jr.flow", [](std::string in) -> durable_task<std::string> {
  std::string a = co_await step(0, in);
  co_await durable::sleep_for(1h);
  std::string b = co_await step(1, a);
  co_return co_await step(2, b);
}};

void reset_steps() { step_runs[0] = step_runs[1] = step_runs[2] = 0; }

// ---- an attempt stuck in a foreign awaitable past its timeout, which then sleeps ----
test_support::gate* socket_for_walked_away = nullptr;
int inline_walked_away_runs = 0;
durable::durable_task<> wait_on_socket() {
  test_support::gate* socket = socket_for_walked_away;
  co_await socket->wait();
}
inline constexpr durable::function stuck_then_sleeps{"jr.stuck_then_sleeps",
                                                     [](int) -> durable_task<int> {
                                                       co_await wait_on_socket();
                                                       ++inline_walked_away_runs;
                                                       co_await durable::sleep_for(1s);  // would be journaled
                                                       co_return 1;
                                                     },
                                                     {.max_attempts = 1, .attempt_timeout = 1s}};

void register_flow(durable::invocations& journaled) {
  journaled.register_function(step);
  journaled.register_function(flow);
}

// ---- a call that fails once and waits 10 minutes for its retry ----
int flaky_runs = 0;
inline constexpr durable::function flaky{
    "jr.flaky",
    [](int x) -> durable_task<int> {
      if (++flaky_runs == 1) co_yield durable::fail(durable::status::temporary_error, "down");
      co_return x * 2;
    },
    durable::retry_policy{.initial_delay = 10min, .max_delay = 1h, .jitter = durable::jitter::none}};
inline constexpr durable::function retry_flow{"jr.retry_flow", [](int x) -> durable_task<int> {
  co_return co_await flaky(x);
}};

// ---- a sleep, then a call ----
int after_sleep_runs = 0;
inline constexpr durable::function after_sleep{"jr.after_sleep", []() -> durable_task<int> {
  ++after_sleep_runs;
  co_return 7;
}};
inline constexpr durable::function sleep_flow{"jr.sleep_flow", []() -> durable_task<int> {
  co_await durable::sleep_for(1h);
  co_return co_await after_sleep();
}};

// ---- a call that fails for good, caught by its caller, which then sleeps ----
int doomed_runs = 0;
inline constexpr durable::function doomed{"jr.doomed", []() -> durable_task<int> {
  ++doomed_runs;
  co_yield durable::fail(durable::status::not_found, "no such thing");
  co_return 0;
}};
struct seen_failure {
  durable::status code = durable::status::ok;
  durable::failure_reason reason = durable::failure_reason::fatal_status;
  std::uint32_t attempts = 0;
  std::string function;
  std::string what;
};
std::vector<seen_failure> seen_failures;
inline constexpr durable::function catching_flow{"jr.catching_flow", []() -> durable_task<std::string> {
  std::string seen = "none";
  try {
    co_await doomed();
  } catch (const durable::failure& f) {
    seen_failures.push_back({f.code(), f.reason(), f.attempts(), std::string(f.function_name()), f.what()});
    seen = std::string(durable::to_string(f.code()));
  }
  co_await durable::sleep_for(1h);
  co_return seen;
}};

// ---- a flow whose code changes between two runs of the program ----
int a_runs = 0;
int b_runs = 0;
inline constexpr durable::function call_a{"jr.a", [](std::string s) -> durable_task<std::string> {
  ++a_runs;
  co_return "a(" + s + ")";
}};
inline constexpr durable::function call_b{"jr.b", [](std::string s) -> durable_task<std::string> {
  ++b_runs;
  co_return "b(" + s + ")";
}};
inline constexpr durable::function changing_v1{"jr.changing", [](std::string in) -> durable_task<std::string> {
  std::string r = co_await call_a(in);
  co_await durable::sleep_for(1h);
  co_return r;
}};
inline constexpr durable::function changing_v2{"jr.changing", [](std::string in) -> durable_task<std::string> {
  std::string r = co_await call_b(in);
  co_await durable::sleep_for(1h);
  co_return r;
}};

// ---- gather inside an invocation ----
int child_runs[3] = {0, 0, 0};
inline constexpr durable::function child{"jr.child", [](int i) -> durable_task<int> {
  ++child_runs[i];
  co_return i * 100;
}};
durable_task<int> branch(int i) {
  co_await durable::sleep_for(i * 1h);
  co_return co_await child(i);
}
inline constexpr durable::function gather_flow{"jr.gather_flow", []() -> durable_task<int> {
  auto [x, y] = co_await durable::gather(branch(1), branch(2));
  co_return x + y;
}};

// ---- a nested call whose result type has no codec ----
struct no_codec {
  int v;
};
inline constexpr durable::function uncodable{"jr.uncodable", []() -> durable_task<no_codec> {
  co_return no_codec{3};
}};
inline constexpr durable::function uncodable_flow{"jr.uncodable_flow", []() -> durable_task<int> {
  const no_codec r = co_await uncodable();
  co_return r.v;
}};

}  // namespace

TEST_CASE("a call completed before a restart is not run again, and the invocation finishes", "[journaled]") {
  reset_steps();
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_flow(journaled);
    auto inv = journaled.start("one", flow, std::string("x"));
    drive_for(rt, 1min);  // step 0 done, the flow sleeps for an hour
    REQUIRE_FALSE(inv.finished());
    REQUIRE(step_runs[0] == 1);
    REQUIRE(step_runs[1] == 0);
  }  // crash
  durable::manual_clock clock{durable::time_point{} + 10min};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_flow(journaled);
  journaled.recover();
  CHECK(journaled.start("one", flow, std::string("ignored")).get() == "x012");
  CHECK(step_runs[0] == 1);
  CHECK(step_runs[1] == 1);
  CHECK(step_runs[2] == 1);
}

TEST_CASE("a file journal reopened after a crash resumes the invocation without rerunning completed calls",
          "[journaled]") {
  reset_steps();
  journal_support::temp_dir dir;
  const auto path = dir.file("journal");
  {
    durable::file_journal j(path, {.sync = durable::sync_mode::every_record});
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_flow(journaled);
    auto inv = journaled.start("file-one", flow, std::string("f"));
    drive_for(rt, 1min);
    REQUIRE_FALSE(inv.finished());
  }  // crash: the runtime and the file go away
  durable::file_journal j(path, {.sync = durable::sync_mode::every_record});
  durable::manual_clock clock{durable::time_point{} + 10min};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_flow(journaled);
  journaled.recover();
  CHECK(journaled.start("file-one", flow, std::string("ignored")).get() == "f012");
  CHECK(step_runs[0] == 1);
  CHECK(step_runs[1] == 1);
  CHECK(step_runs[2] == 1);
  CHECK(clock.now() == durable::time_point{} + 1h);
  const auto s = durable::summarize(j.records());
  CHECK(summary_of(s, "file-one").state == durable::invocation_state::succeeded);
}

TEST_CASE("starting an existing id runs nothing and returns that invocation's result", "[journaled]") {
  reset_steps();
  durable::memory_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_flow(journaled);
  CHECK(journaled.start("same", flow, std::string("x")).get() == "x012");
  const std::size_t records = j.records().size();
  CHECK(journaled.start("same", flow, std::string("other")).get() == "x012");
  CHECK(step_runs[0] == 1);
  CHECK(step_runs[1] == 1);
  CHECK(step_runs[2] == 1);
  CHECK(j.records().size() == records);
}

TEST_CASE("starting the id of an invocation finished before a restart returns its result", "[journaled]") {
  reset_steps();
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_flow(journaled);
    REQUIRE(journaled.start("done", flow, std::string("x")).get() == "x012");
  }
  const std::size_t records = j.records().size();
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_flow(journaled);
  journaled.recover();
  auto inv = journaled.start("done", flow, std::string("other"));
  CHECK(inv.finished());
  CHECK(inv.get() == "x012");
  CHECK(step_runs[0] == 1);
  CHECK(step_runs[1] == 1);
  CHECK(step_runs[2] == 1);
  CHECK(j.records().size() == records);
  CHECK(clock.now() == durable::time_point{});
}

TEST_CASE("a call waiting for a retry resumes with its attempt count at its recorded wake-up time", "[journaled]") {
  flaky_runs = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(flaky);
    journaled.register_function(retry_flow);
    auto inv = journaled.start("retry", retry_flow, 21);
    drive_for(rt, 1min);  // attempt 1 failed at 0; the retry is due at 10 min
    REQUIRE_FALSE(inv.finished());
    REQUIRE(flaky_runs == 1);
  }  // crash
  const auto before = durable::summarize(j.records());
  const auto& waits = summary_of(before, "retry").waits;
  REQUIRE(waits.contains(durable::call_path{0, 0}));
  const durable::wait_scheduled_record recorded = waits.at(durable::call_path{0, 0});
  REQUIRE(recorded.kind == durable::wait_kind::retry);
  CHECK(recorded.attempt == 1);
  CHECK(recorded.wake_at() == durable::time_point{} + 10min);

  durable::manual_clock clock{durable::time_point{} + 5min};  // before the recorded time
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  test_support::recorder events(rt);
  journaled.register_function(flaky);
  journaled.register_function(retry_flow);
  journaled.recover();
  CHECK(journaled.start("retry", retry_flow, 0).get() == 42);
  CHECK(flaky_runs == 2);
  CHECK(clock.now() == recorded.wake_at());  // not 5 min + a fresh 10 min
  std::vector<std::uint32_t> flaky_attempts;
  for (const auto& e : events.of(durable::event_kind::attempt_started))
    if (e.function_name == "jr.flaky") flaky_attempts.push_back(e.attempt);
  CHECK(flaky_attempts == std::vector<std::uint32_t>{recorded.attempt + 1});
}

TEST_CASE("a durable sleep ends at its original wake-up time after a restart", "[journaled]") {
  after_sleep_runs = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(after_sleep);
    journaled.register_function(sleep_flow);
    auto inv = journaled.start("sleeper", sleep_flow);
    drive_for(rt, 1min);
    REQUIRE_FALSE(inv.finished());
  }  // crash
  durable::manual_clock clock{durable::time_point{} + 20min};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(after_sleep);
  journaled.register_function(sleep_flow);
  journaled.recover();
  CHECK(journaled.start("sleeper", sleep_flow).get() == 7);
  CHECK(clock.now() == durable::time_point{} + 1h);  // not 20 min + 1 h
  CHECK(after_sleep_runs == 1);
}

TEST_CASE("a recorded failure is replayed as the same durable::failure", "[journaled]") {
  doomed_runs = 0;
  seen_failures.clear();
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(doomed);
    journaled.register_function(catching_flow);
    auto inv = journaled.start("doomed", catching_flow);
    drive_for(rt, 1min);
    REQUIRE_FALSE(inv.finished());
    REQUIRE(doomed_runs == 1);
    REQUIRE(seen_failures.size() == 1);
  }  // crash
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(doomed);
  journaled.register_function(catching_flow);
  journaled.recover();
  CHECK(journaled.start("doomed", catching_flow).get() == "NOT_FOUND");
  CHECK(doomed_runs == 1);  // replayed, not run again
  REQUIRE(seen_failures.size() == 2);
  const seen_failure& first = seen_failures[0];
  const seen_failure& replayed = seen_failures[1];
  CHECK(first.code == durable::status::not_found);
  CHECK(replayed.code == first.code);
  CHECK(replayed.reason == first.reason);
  CHECK(replayed.attempts == first.attempts);
  CHECK(replayed.function == first.function);
  CHECK(replayed.what == first.what);  // the recorded what() is not prefixed a second time
}

TEST_CASE("a finished invocation's failure is the same durable::failure after a restart", "[journaled]") {
  doomed_runs = 0;
  std::string first_what;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(doomed);
    try {
      journaled.start("doomed-root", doomed).get();
      FAIL("expected a failure");
    } catch (const durable::failure& f) {
      CHECK(f.code() == durable::status::not_found);
      first_what = f.what();
      CHECK(first_what == "jr.doomed failed with NOT_FOUND after 1 attempt (fatal status): no such thing");
    }
  }
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(doomed);
  journaled.recover();
  try {
    journaled.start("doomed-root", doomed).get();
    FAIL("expected a failure");
  } catch (const durable::failure& f) {
    CHECK(f.code() == durable::status::not_found);
    CHECK(f.reason() == durable::failure_reason::fatal_status);
    CHECK(f.function_name() == "jr.doomed");
    CHECK(std::string(f.what()) == first_what);
  }
  CHECK(doomed_runs == 1);
}

TEST_CASE("a code change restarts the invocation from scratch with its original input", "[journaled]") {
  a_runs = b_runs = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(call_a);
    journaled.register_function(changing_v1);
    auto inv = journaled.start("changing", changing_v1, std::string("orig"));
    drive_for(rt, 1min);
    REQUIRE_FALSE(inv.finished());
    REQUIRE(a_runs == 1);
  }  // crash; the new program calls b where the journal has a
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  test_support::recorder events(rt);
  journaled.register_function(call_a);
  journaled.register_function(call_b);
  journaled.register_function(changing_v2);
  journaled.recover();
  CHECK(journaled.start("changing", changing_v2, std::string("ignored")).get() == "b(orig)");
  CHECK(a_runs == 1);
  CHECK(b_runs == 1);
  CHECK(events.count(durable::event_kind::restarted) == 1);
  const auto s = durable::summarize(j.records());
  CHECK(summary_of(s, "changing").resets == 1);
  CHECK(summary_of(s, "changing").state == durable::invocation_state::succeeded);
  // The sleep started afresh after the reset: an hour from the restart.
  CHECK(clock.now() == durable::time_point{} + 1h);
}

TEST_CASE("register_function of a name registered already throws invalid_argument", "[journaled]") {
  durable::memory_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(step);
  CHECK_THROWS_AS(journaled.register_function(step), std::invalid_argument);
}

TEST_CASE("start of a function that is not registered throws logic_error", "[journaled]") {
  durable::memory_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(step);
  CHECK_THROWS_AS(journaled.start("x", flow, std::string("x")), std::logic_error);
  CHECK(j.records().empty());
}

TEST_CASE("recover with an unfinished invocation of an unregistered function throws logic_error", "[journaled]") {
  reset_steps();
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_flow(journaled);
    static_cast<void>(journaled.start("orphan", flow, std::string("x")));
    drive_for(rt, 1min);
  }
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(step);  // not flow
  CHECK_THROWS_AS(journaled.recover(), std::logic_error);
}

TEST_CASE("journaled invocations cannot be made without a journal", "[journaled]") {
  STATIC_REQUIRE_FALSE(std::is_constructible_v<durable::invocations, durable::runtime&>);
  STATIC_REQUIRE(std::is_constructible_v<durable::invocations, durable::runtime&, durable::memory_journal&>);
}

TEST_CASE("gather in an invocation gives its children's calls distinct paths; finished ones are not rerun",
          "[journaled]") {
  child_runs[0] = child_runs[1] = child_runs[2] = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(child);
    journaled.register_function(gather_flow);
    auto inv = journaled.start("gather", gather_flow);
    drive_for(rt, 90min);  // branch 1 is done; branch 2 sleeps until 2 h
    REQUIRE_FALSE(inv.finished());
    REQUIRE(child_runs[1] == 1);
    REQUIRE(child_runs[2] == 0);
  }  // crash
  {
    const auto s = durable::summarize(j.records());
    const auto& inv = summary_of(s, "gather");
    // The gather is call 0 of the invocation's call [0]; child i's sleep is [0,0,i,0] and its
    // call [0,0,i,1].
    REQUIRE(inv.completed.contains(durable::call_path{0, 0, 0, 1}));
    CHECK(inv.completed.at(durable::call_path{0, 0, 0, 1}).function == "jr.child");
    CHECK(inv.waits.contains(durable::call_path{0, 0, 0, 0}));
    CHECK(inv.waits.contains(durable::call_path{0, 0, 1, 0}));
    CHECK(inv.waits.at(durable::call_path{0, 0, 1, 0}).wake_at() == durable::time_point{} + 2h);
  }
  durable::manual_clock clock{durable::time_point{} + 100min};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(child);
  journaled.register_function(gather_flow);
  journaled.recover();
  CHECK(journaled.start("gather", gather_flow).get() == 300);
  CHECK(child_runs[1] == 1);
  CHECK(child_runs[2] == 1);
  CHECK(clock.now() == durable::time_point{} + 2h);
  const auto s = durable::summarize(j.records());
  const auto& inv = summary_of(s, "gather");
  CHECK(inv.completed.contains(durable::call_path{0, 0, 0, 1}));
  CHECK(inv.completed.contains(durable::call_path{0, 0, 1, 1}));
  CHECK(inv.completed.at(durable::call_path{0, 0, 1, 1}).function == "jr.child");
}

TEST_CASE("a journaled call whose result type has no codec fails with invalid_argument", "[journaled]") {
  durable::memory_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  // (uncodable itself cannot be registered: register_function requires a codec at compile time.)
  journaled.register_function(uncodable_flow);
  try {
    static_cast<void>(journaled.start("uncodable", uncodable_flow).get());
    FAIL("expected a failure");
  } catch (const durable::failure& f) {
    CHECK(f.code() == durable::status::invalid_argument);
    CHECK_THAT(f.what(), Catch::Matchers::Contains("codec"));
  }
}

TEST_CASE("compacting the journal drops finished invocations and keeps running ones", "[journaled][compaction]") {
  durable::memory_journal journal;
  reset_steps();
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, journal};
    register_flow(journaled);
    journaled.start("finished", flow, std::string("f"));
    drive_for(rt, 2h);  // "finished" runs to its end
    journaled.start("running", flow, std::string("r"));
    drive_for(rt, 1min);  // "running" is in its hour of sleep
    journaled.compact_journal();
    const durable::journal_summary after = durable::summarize(journal.records());
    CHECK(after.order == std::vector<std::string>{"running"});
    // A compacted id is forgotten: starting it again runs it again.
    const int runs_before = step_runs[0];
    CHECK(journaled.start("finished", flow, std::string("g")).get() == "g012");
    CHECK(step_runs[0] == runs_before + 1);
  }  // crash
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal};
  register_flow(journaled);
  journaled.recover();
  CHECK(journaled.start("running", flow, std::string("ignored")).get() == "r012");
}

TEST_CASE("an attempt the call walked away from never writes to its invocation's journal again", "[journaled][attempt_timeout]") {
  durable::memory_journal j;
  test_support::gate socket;
  socket_for_walked_away = &socket;
  inline_walked_away_runs = 0;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(stuck_then_sleeps);
    auto inv = journaled.start("inv", stuck_then_sleeps, 1);
    CHECK_THROWS_AS(inv.get(), durable::failure);  // its only attempt timed out in the foreign wait
    journaled.compact_journal();                           // the finished invocation is dropped
    const std::size_t records_after_compaction = j.records().size();
    socket.open();  // the detached attempt resumes and would journal its sleep
    CHECK(rt.drain(std::chrono::seconds(30)));
    CHECK(inline_walked_away_runs == 1);
    CHECK(j.records().size() == records_after_compaction);
  }
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(stuck_then_sleeps);
  CHECK_NOTHROW(journaled.recover());
}

TEST_CASE("recover skips records about an invocation it never started and reports them", "[journaled]") {
  reset_steps();
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_flow(journaled);
    static_cast<void>(journaled.start("kept", flow, std::string("x")));
    drive_for(rt, 1min);  // it sleeps for an hour
  }
  // What an attempt that outlived its invocation's compaction would have left.
  const durable::wait_scheduled_record orphan{"ghost", durable::call_path{0, 1}, durable::wait_kind::sleep, 0,
                                              durable::status::ok, 5};
  const auto bytes = durable::encode(orphan);
  j.append(static_cast<std::uint8_t>(durable::journal_record_type::wait_scheduled), bytes);

  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_flow(journaled);
  std::vector<std::string> skipped;
  rt.on_event([&skipped](const durable::event& e) {
    if (e.kind == durable::event_kind::records_skipped) skipped.push_back(std::string(e.function_name) + ": " + std::string(e.message));
  });
  REQUIRE_NOTHROW(journaled.recover());
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0] == "ghost: skipped 1 journal record of invocation 'ghost', which the journal never started");
  auto kept = journaled.start("kept", flow, std::string("ignored"));
  CHECK(kept.get() == "x012");  // the real invocation was recovered and finishes
}

TEST_CASE("recorded waits with extreme times and attempt numbers recover as saturated values, not overflows",
          "[journaled][untrusted]") {
  durable::memory_journal j;
  const auto append = [&j](durable::journal_record_type type, const auto& record) {
    const auto bytes = durable::encode(record);
    j.append(static_cast<std::uint8_t>(type), bytes);
  };
  constexpr auto min_ns = std::numeric_limits<std::int64_t>::min();
  constexpr auto max_attempt = std::numeric_limits<std::uint32_t>::max();
  append(durable::journal_record_type::invocation_started,
         durable::invocation_started_record{"far", "jr.retry_flow", durable::encode(std::tuple<int>(21))});
  // retry_flow's own retry wait at [0] and flaky's at [0, 0]: the largest attempt, due at the
  // earliest time there is.
  append(durable::journal_record_type::wait_scheduled,
         durable::wait_scheduled_record{"far", durable::call_path{0}, durable::wait_kind::retry, max_attempt,
                                        durable::status::temporary_error, min_ns});
  append(durable::journal_record_type::wait_scheduled,
         durable::wait_scheduled_record{"far", durable::call_path{0, 0}, durable::wait_kind::retry, max_attempt,
                                        durable::status::temporary_error, min_ns});
  append(durable::journal_record_type::invocation_started,
         durable::invocation_started_record{"slept", "jr.sleep_flow", durable::encode(std::tuple<>())});
  append(durable::journal_record_type::wait_scheduled,
         durable::wait_scheduled_record{"slept", durable::call_path{0, 0}, durable::wait_kind::sleep, 0,
                                        durable::status::ok, min_ns});
  CHECK(durable::summarize(j.records()).invocations.at("far").attempts() == max_attempt);  // not 0

  durable::manual_clock clock;
  clock.advance_to(durable::time_point{} + std::chrono::hours(24 * 365 * 54));  // a wall-clock time
  const durable::time_point start = clock.now();
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(flaky);
  journaled.register_function(retry_flow);
  journaled.register_function(after_sleep);
  journaled.register_function(sleep_flow);
  flaky_runs = 1;  // flaky succeeds on its next attempt
  REQUIRE_NOTHROW(journaled.recover());
  auto far = journaled.start("far", retry_flow, 0);
  auto slept = journaled.start("slept", sleep_flow);
  CHECK(far.get() == 42);
  CHECK(slept.get() == 7);
  CHECK(clock.now() == start);  // both waits were due at once: no retry in the year 2262
}

namespace {
// Fails every time; retried every 20 minutes for at most an hour from its first attempt.
int hopeless_runs = 0;
inline constexpr durable::function hopeless{
    "jr.hopeless",
    [](int) -> durable_task<int> {
      ++hopeless_runs;
      co_yield durable::fail(durable::status::temporary_error, "still down");
      co_return 0;
    },
    {.initial_delay = 20min, .multiplier = 1.0, .max_delay = 20min, .jitter = durable::jitter::none,
     .max_attempts = 0, .max_elapsed = 1h}};
inline constexpr durable::function deadline_flow{"jr.deadline_flow",
                                                 [](int x) -> durable_task<int> { co_return co_await hopeless(x); }};
}  // namespace

TEST_CASE("a call's max_elapsed counts from its first attempt across a restart, not from the recovery",
          "[journaled][deadline]") {
  hopeless_runs = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(hopeless);
    journaled.register_function(deadline_flow);
    static_cast<void>(journaled.start("deadline", deadline_flow, 1));
    drive_for(rt, 30min);  // attempts at 0 and 20 min failed; the next is due at 40 min
    REQUIRE(hopeless_runs == 2);
  }  // crash at 30 min
  const auto recorded = summary_of(durable::summarize(j.records()), "deadline").waits.at(durable::call_path{0, 0});
  CHECK(recorded.first_attempt_ns == std::int64_t{0});  // the first attempt started at time 0

  durable::manual_clock clock{durable::time_point{} + 30min};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(hopeless);
  journaled.register_function(deadline_flow);
  journaled.recover();
  try {
    static_cast<void>(journaled.start("deadline", deadline_flow, 1).get());
    FAIL("a call that always fails succeeded");
  } catch (const durable::failure& f) {
    CHECK(f.reason() == durable::failure_reason::deadline_exceeded);
  }
  // Attempts at 40 and 60 min after the restart; the deadline is 1 h from the first attempt
  // (counted from the recovery it would have gone on to 90 min).
  CHECK(hopeless_runs == 4);
  CHECK(clock.now() == durable::time_point{} + 1h);
}

TEST_CASE("a retry wait journaled without its first attempt (an older journal) still decodes", "[journaled][deadline]") {
  // Today's record with the field left out is byte for byte what journals held before it.
  durable::wait_scheduled_record old{"id", {0, 0}, durable::wait_kind::retry, 2, durable::status::temporary_error, 123};
  const std::vector<std::byte> bytes = durable::encode(old);
  const auto back = durable::decode<durable::wait_scheduled_record>(bytes);
  CHECK_FALSE(back.first_attempt_ns.has_value());
  CHECK(back.wake_at_ns == 123);
  CHECK(back.attempt == 2);
  old.first_attempt_ns = 7;
  CHECK(durable::decode<durable::wait_scheduled_record>(durable::encode(old)).first_attempt_ns == std::int64_t{7});
  CHECK(durable::encode(old).size() == bytes.size() + durable::encode(std::int64_t{7}).size());
}
