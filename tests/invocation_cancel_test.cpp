// Cancelling a journaled invocation by id: recorded in the journal, so that it stays cancelled
// after a restart.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using durable::durable_task;
using durable::failure_reason;

namespace {

void drive_for(durable::runtime& rt, std::chrono::nanoseconds d) {
  auto tick = [](std::chrono::nanoseconds how_long) -> durable_task<> { co_await durable::sleep_for(how_long); };
  rt.run(tick(d));
}

// A flow of two steps with a day's sleep between them: cancelled during the sleep.
int first_runs = 0;
int second_runs = 0;
inline constexpr durable::function first_step{"ic.first", [](std::string s) -> durable_task<std::string> {
  ++first_runs;
  co_return s + "!";
}};
inline constexpr durable::function second_step{"ic.second", [](std::string s) -> durable_task<std::string> {
  ++second_runs;
  co_return s + "?";
}};
inline constexpr durable::function renewal{"ic.renewal", [](std::string who) -> durable_task<std::string> {
  const std::string a = co_await first_step(who);
  co_await durable::sleep_for(24h);
  co_return co_await second_step(a);
}};

void reset_runs() { first_runs = second_runs = 0; }

/// One run of a program on `journal`: a runtime on a manual clock, and its invocations with the
/// flow's functions registered.
struct program {
  explicit program(durable::journal& journal) : journaled(rt, journal) {
    journaled.register_function(first_step);
    journaled.register_function(second_step);
    journaled.register_function(renewal);
  }
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled;
};

/// The failure `get()` throws, which must be there.
template <class Invocation>
durable::failure failure_of(Invocation& inv) {
  try {
    static_cast<void>(inv.get());
  } catch (const durable::failure& f) {
    return f;
  }
  FAIL("the invocation succeeded");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("cancelling a running invocation by id stops it, and get throws a cancelled failure", "[invocations][cancel]") {
  reset_runs();
  durable::memory_journal j;
  program run(j);
  auto& [clock, rt, journaled] = run;
  auto sub = journaled.start("renew:ada", renewal, std::string("ada"));
  drive_for(rt, 1h);  // the first step is done; the flow sleeps
  CHECK(journaled.cancel("renew:ada"));
  const durable::failure f = failure_of(sub);
  CHECK(f.reason() == failure_reason::cancelled);
  CHECK(first_runs == 1);
  CHECK(second_runs == 0);
  CHECK(clock.now() - durable::time_point{} < 24h);  // the sleep ended at once
}

TEST_CASE("a cancelled invocation stays cancelled after a restart", "[invocations][cancel]") {
  reset_runs();
  durable::memory_journal j;
  {
    program run(j);
    auto& [clock, rt, journaled] = run;
    static_cast<void>(journaled.start("renew:bob", renewal, std::string("bob")));
    drive_for(rt, 1h);
    CHECK(journaled.cancel("renew:bob"));
  }  // the process ends
  const durable::journal_summary summary = durable::summarize(j.records());
  CHECK(summary.invocations.at("renew:bob").state == durable::invocation_state::failed);

  program run(j);
  auto& [clock, rt, journaled] = run;
  journaled.recover();
  rt.run_until_idle();
  CHECK(second_runs == 0);  // not resumed
  auto again = journaled.start("renew:bob", renewal, std::string("bob"));
  CHECK(failure_of(again).reason() == failure_reason::cancelled);
  CHECK(first_runs == 1);
}

TEST_CASE("cancelling an invocation through its handle is the same as by id", "[invocations][cancel]") {
  reset_runs();
  durable::memory_journal j;
  program run(j);
  auto& [clock, rt, journaled] = run;
  auto sub = journaled.start("renew:cy", renewal, std::string("cy"));
  drive_for(rt, 1h);
  CHECK(sub.cancel());
  CHECK(failure_of(sub).reason() == failure_reason::cancelled);
  CHECK_FALSE(journaled.cancel("renew:cy"));  // finished now
}

TEST_CASE("cancelling a finished invocation changes nothing", "[invocations][cancel]") {
  reset_runs();
  durable::memory_journal j;
  program run(j);
  auto& [clock, rt, journaled] = run;
  auto sub = journaled.start("renew:di", renewal, std::string("di"));
  CHECK(sub.get() == "di!?");
  const std::size_t records = j.records().size();
  CHECK_FALSE(journaled.cancel("renew:di"));
  CHECK_FALSE(sub.cancel());
  CHECK(j.records().size() == records);  // nothing journaled
  CHECK(journaled.start("renew:di", renewal, std::string("di")).get() == "di!?");
}

TEST_CASE("cancelling an id that is neither running nor finished is invalid_argument", "[invocations][cancel]") {
  durable::memory_journal j;
  program run(j);
  auto& [clock, rt, journaled] = run;
  CHECK_THROWS_AS(journaled.cancel("never-started"), std::invalid_argument);
  CHECK(j.records().empty());
}

TEST_CASE("an invocation cancelled before it ran runs none of its code", "[invocations][cancel]") {
  reset_runs();
  durable::memory_journal j;
  program run(j);
  auto& [clock, rt, journaled] = run;
  auto sub = journaled.start("renew:ed", renewal, std::string("ed"));  // queued, not run yet
  CHECK(sub.cancel());
  CHECK(failure_of(sub).reason() == failure_reason::cancelled);
  CHECK(first_runs == 0);
}
