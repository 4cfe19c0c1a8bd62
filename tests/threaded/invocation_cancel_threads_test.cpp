// Cancelling invocations by id while worker threads finish them: each one ends exactly one way,
// and the journal and a restart agree with what `cancel` and `get` said. Assertions stay on the
// test thread.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <cstddef>
#include <string>
#include <vector>

using durable::durable_task;

namespace {

inline constexpr durable::function add_one{"ict.add_one", [](int x) -> durable_task<int> { co_return x + 1; }};
inline constexpr durable::function add_two{"ict.add_two", [](int x) -> durable_task<int> {
  const int a = co_await add_one(x);
  co_return co_await add_one(a);
}};

std::string id_of(int i) { return "race-" + std::to_string(i); }

}  // namespace

TEST_CASE("a cancel racing an invocation's end on workers: one outcome, journaled once, kept after a restart",
          "[threads][invocations][cancel]") {
  constexpr int count = 200;
  durable::memory_journal journal;
  std::vector<bool> cancelled(count);
  std::vector<int> got(count, -1);      // the value, or -1 if get threw a cancelled failure
  int wrong_failures = 0;
  {
    durable::runtime rt{{.workers = 2}};
    durable::invocations journaled{rt, journal};
    journaled.register_function(add_one);
    journaled.register_function(add_two);
    std::vector<durable::invocation<int>> started;
    for (int i = 0; i < count; ++i) {
      started.push_back(journaled.start(id_of(i), add_two, i));
      cancelled[static_cast<std::size_t>(i)] = journaled.cancel(id_of(i));  // the workers run it meanwhile
    }
    for (int i = 0; i < count; ++i) {
      try {
        got[static_cast<std::size_t>(i)] = started[static_cast<std::size_t>(i)].get();
      } catch (const durable::failure& f) {
        if (f.reason() != durable::failure_reason::cancelled) ++wrong_failures;
      }
    }
  }
  CHECK(wrong_failures == 0);
  int mismatches = 0;
  int cancels = 0;
  const durable::journal_summary summary = durable::summarize(journal.records());
  std::size_t outcome_records = 0;
  for (const durable::journal_record& r : journal.records()) {
    if (r.type != static_cast<std::uint8_t>(durable::journal_record_type::call_completed)) continue;
    if (durable::decode<durable::call_completed_record>(r.payload).path == durable::call_path{0}) ++outcome_records;
  }
  CHECK(outcome_records == count);  // exactly one outcome per invocation, never both
  for (int i = 0; i < count; ++i) {
    const auto at = static_cast<std::size_t>(i);
    const durable::invocation_summary& s = summary.invocations.at(id_of(i));
    if (cancelled[at]) {
      ++cancels;
      if (got[at] != -1 || s.state != durable::invocation_state::failed) ++mismatches;
    } else if (got[at] != i + 2 || s.state != durable::invocation_state::succeeded) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
  INFO("cancelled in time: " << cancels << " of " << count);

  // A restart reads the same outcomes back.
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal};
  journaled.register_function(add_one);
  journaled.register_function(add_two);
  journaled.recover();
  int restarted_mismatches = 0;
  for (int i = 0; i < count; ++i) {
    auto again = journaled.start(id_of(i), add_two, i);
    int value = -1;
    try {
      value = again.get();
    } catch (const durable::failure&) {
    }
    if (value != got[static_cast<std::size_t>(i)]) ++restarted_mismatches;
  }
  CHECK(restarted_mismatches == 0);
}
