// Journaled invocations over the store interface: a memory_store or a journal through its
// journal_store, what a retried parent replays, cancels from another run, and the record layout.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>
#include <durable/journal_store.hpp>
#include <durable/memory_store.hpp>

#include <chrono>
#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using durable::durable_task;

namespace {

void drive_for(durable::runtime& rt, std::chrono::nanoseconds d) {
  auto tick = [](std::chrono::nanoseconds how_long) -> durable_task<> { co_await durable::sleep_for(how_long); };
  rt.run(tick(d));
}

// A parent whose first attempt fails after its child completed: the retry calls the child
// again at the same path.
int child_runs = 0;
int parent_attempts = 0;
inline constexpr durable::function child{"os.child", [](int x) -> durable_task<int> {
  ++child_runs;
  co_return x * 10;
}};
inline constexpr durable::function parent{"os.parent",
                                          [](int x) -> durable_task<int> {
                                            const int got = co_await child(x);
                                            if (++parent_attempts == 1)
                                              co_yield durable::fail(durable::status::temporary_error, "not yet");
                                            co_return got + 1;
                                          },
                                          {.initial_delay = 1s, .jitter = durable::jitter::none}};
inline constexpr durable::function outer{"os.outer", [](int x) -> durable_task<int> { co_return co_await parent(x); }};

// A flow of two steps with a day's sleep between them.
int first_runs = 0;
int second_runs = 0;
inline constexpr durable::function first{"os.first", [](std::string s) -> durable_task<std::string> {
  ++first_runs;
  co_return s + "!";
}};
inline constexpr durable::function second{"os.second", [](std::string s) -> durable_task<std::string> {
  ++second_runs;
  co_return s + "?";
}};
inline constexpr durable::function renewal{"os.renewal", [](std::string who) -> durable_task<std::string> {
  const std::string a = co_await first(who);
  co_await durable::sleep_for(24h);
  co_return co_await second(a);
}};

template <class Registry>
void register_all(Registry& journaled) {
  journaled.register_function(child);
  journaled.register_function(parent);
  journaled.register_function(outer);
  journaled.register_function(first);
  journaled.register_function(second);
  journaled.register_function(renewal);
}

}  // namespace

TEST_CASE("a retried call's children that completed in its failed attempt are not run again", "[invocations][store]") {
  child_runs = parent_attempts = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::memory_store store;
  durable::invocations journaled{rt, store};
  register_all(journaled);
  CHECK(journaled.start("retry-1", outer, 4).get() == 41);
  CHECK(parent_attempts == 2);
  CHECK(child_runs == 1);  // the second attempt read the child's recorded outcome
}

TEST_CASE("invocations over a memory_store run, and a second start returns the same result", "[invocations][store]") {
  first_runs = second_runs = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::memory_store store([&clock] { return clock.now(); });
  durable::invocations journaled{rt, store};
  register_all(journaled);
  CHECK(journaled.start("ada", renewal, std::string("ada")).get() == "ada!?");
  CHECK(journaled.start("ada", renewal, std::string("other")).get() == "ada!?");
  CHECK(first_runs == 1);
  CHECK(second_runs == 1);
  CHECK(journaled.finished_invocations() == 1);
  CHECK(store.read("ada")->state == durable::stored_state::finished);
}

TEST_CASE("an invocation cancelled by id in a later run, before recover, never runs again", "[invocations][cancel]") {
  first_runs = second_runs = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_all(journaled);
    static_cast<void>(journaled.start("renew:bo", renewal, std::string("bo")));
    drive_for(rt, 1h);  // the first step is done; the flow sleeps
  }  // crash
  {
    durable::manual_clock clock{durable::time_point{} + 2h};
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_all(journaled);
    CHECK(journaled.cancel("renew:bo"));  // nobody runs it: the store finishes it as cancelled
    journaled.recover();
    rt.run_until_idle();
    CHECK_THROWS_AS(journaled.start("renew:bo", renewal, std::string("bo")).get(), durable::failure);
  }
  durable::manual_clock clock{durable::time_point{} + 3h};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_all(journaled);
  journaled.recover();
  drive_for(rt, 48h);
  CHECK(first_runs == 1);
  CHECK(second_runs == 0);
  try {
    static_cast<void>(journaled.start("renew:bo", renewal, std::string("bo")).get());
    FAIL("a cancelled invocation succeeded");
  } catch (const durable::failure& f) {
    CHECK(f.reason() == durable::failure_reason::cancelled);
  }
}

TEST_CASE("starting an unfinished id before recover resumes that one invocation", "[invocations][store]") {
  first_runs = second_runs = 0;
  durable::memory_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    register_all(journaled);
    static_cast<void>(journaled.start("renew:cy", renewal, std::string("cy")));
    drive_for(rt, 1h);
  }  // crash
  durable::manual_clock clock{durable::time_point{} + 2h};
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  register_all(journaled);
  CHECK(journaled.start("renew:cy", renewal, std::string("ignored")).get() == "cy!?");
  CHECK(first_runs == 1);
  CHECK(second_runs == 1);
  // One started record: the second start took the recorded invocation, it wrote no new one.
  std::size_t started = 0;
  for (const durable::journal_record& r : j.records())
    if (r.type == static_cast<std::uint8_t>(durable::journal_record_type::invocation_started)) ++started;
  CHECK(started == 1);
}

TEST_CASE("a cancel lets the running step finish and starts no further call", "[invocations][cancel]") {
  first_runs = second_runs = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::memory_store store;
  durable::invocations journaled{rt, store};
  register_all(journaled);
  static durable::invocations* cancelling = nullptr;
  cancelling = &journaled;
  // The step cancels its own invocation while it runs: it still ends normally, and the flow
  // stops before its next call.
  static constexpr durable::function cancelling_step{"os.cancelling_step", [](int x) -> durable_task<int> {
    CHECK(cancelling->cancel("self"));
    co_return x + 1;
  }};
  static constexpr durable::function after{"os.after", [](int x) -> durable_task<int> {
    ++second_runs;
    co_return x;
  }};
  static constexpr durable::function two_steps{"os.two_steps", [](int x) -> durable_task<int> {
    const int a = co_await cancelling_step(x);
    co_return co_await after(a);
  }};
  journaled.register_function(cancelling_step);
  journaled.register_function(after);
  journaled.register_function(two_steps);
  auto inv = journaled.start("self", two_steps, 1);
  try {
    static_cast<void>(inv.get());
    FAIL("the cancelled invocation succeeded");
  } catch (const durable::failure& f) {
    CHECK(f.reason() == durable::failure_reason::cancelled);
  }
  CHECK(second_runs == 0);
}

TEST_CASE("a call's completion record has the layout of its field-by-field codec", "[invocations][codec]") {
  durable::call_completed_record r{"an-invocation-id-longer-than-sso", durable::call_path{0, 3, 200, 70000}, "fn"};
  r.code = durable::status::temporary_error;
  r.reason = durable::failure_reason::attempts_exhausted;
  r.attempts = 300;
  r.message = std::string(200, 'm');
  r.value = {std::byte{0}, std::byte{0x80}, std::byte{0xFF}};
  durable::byte_writer by_fields;
  durable::codec<durable::call_completed_record>::layout::encode(r, by_fields);
  CHECK(durable::encode(r) == by_fields.bytes());
  CHECK(durable::decode<durable::call_completed_record>(durable::encode(r)).value == r.value);
}
