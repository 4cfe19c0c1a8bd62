// Automatic journal compaction (runtime_options::compact_after_records): finished invocations
// are condensed to their started record and their outcome, running ones keep everything, and
// a restart sees the same invocations with the same outcomes.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using durable::durable_task;

namespace {

int adds = 0;
inline constexpr durable::function add_one{"jc.add_one", [](int x) -> durable_task<int> {
  ++adds;
  co_return x + 1;
}};
/// Five records when it runs to its end: started, three calls, its own completion.
inline constexpr durable::function three_adds{"jc.three_adds", [](int x) -> durable_task<int> {
  const int a = co_await add_one(x);
  const int b = co_await add_one(a);
  co_return co_await add_one(b);
}};
/// Stops in a sleep of an hour after its first call.
inline constexpr durable::function add_sleep_add{"jc.add_sleep_add", [](int x) -> durable_task<int> {
  const int a = co_await add_one(x);
  co_await durable::sleep_for(1h);
  co_return co_await add_one(a);
}};

void register_all(durable::invocations& journaled) {
  journaled.register_function(add_one);
  journaled.register_function(three_adds);
  journaled.register_function(add_sleep_add);
}

void drive_for(durable::runtime& rt, std::chrono::nanoseconds d) {
  auto tick = [](std::chrono::nanoseconds how_long) -> durable_task<> { co_await durable::sleep_for(how_long); };
  rt.run(tick(d));
}

/// The journal's records, by invocation id: their types, in order.
std::map<std::string, std::vector<durable::journal_record_type>> record_types(const durable::journal& j) {
  std::map<std::string, std::vector<durable::journal_record_type>> out;
  for (const durable::journal_record& r : j.records()) {
    durable::byte_reader in(r.payload);
    out[durable::codec<std::string>::decode(in)].push_back(static_cast<durable::journal_record_type>(r.type));
  }
  return out;
}

/// Events of one kind, with their messages copied (an event's message is a view).
struct compaction_events {
  std::vector<std::string> compacted;
  std::vector<std::string> failed;
  std::vector<std::optional<durable::failure_reason>> failed_reasons;

  explicit compaction_events(durable::runtime& rt) {
    rt.on_event([this](const durable::event& e) {
      if (e.kind == durable::event_kind::journal_compacted) compacted.emplace_back(e.message);
      if (e.kind == durable::event_kind::compaction_failed) {
        failed.emplace_back(e.message);
        failed_reasons.push_back(e.reason);
      }
    });
  }
};

/// A memory journal whose compaction can be made to fail, as a full disk fails a file journal's.
class journal_with_failing_compaction final : public durable::journal {
 public:
  bool fail_compaction = true;
  int compactions_tried = 0;

  std::uint64_t append(std::uint8_t type, std::span<const std::byte> payload) override {
    return inner_.append(type, payload);
  }
  void make_durable(std::uint64_t lsn) override { inner_.make_durable(lsn); }
  [[nodiscard]] std::vector<durable::journal_record> records() const override { return inner_.records(); }
  void compact(std::function<bool(const durable::journal_record&)> keep) override {
    ++compactions_tried;
    if (fail_compaction) throw std::system_error(ENOSPC, std::generic_category(), "write compacted journal");
    inner_.compact(std::move(keep));
  }
  [[nodiscard]] std::uint64_t last_lsn() const override { return inner_.last_lsn(); }

 private:
  durable::memory_journal inner_;
};

using type = durable::journal_record_type;
const std::vector<type> condensed = {type::invocation_started, type::call_completed};

}  // namespace

TEST_CASE("automatic compaction keeps of a finished invocation only its started record and its outcome",
          "[compaction]") {
  durable::memory_journal journal;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal, {.compact_after_records = 10}};
  register_all(journaled);
  compaction_events events(rt);
  for (int i = 0; i < 2; ++i) CHECK(journaled.start("order-" + std::to_string(i), three_adds, i * 10).get() == i * 10 + 3);
  // 10 records: the second invocation's end compacts.
  CHECK(events.compacted.size() == 1);
  const auto by_id = record_types(journal);
  CHECK(by_id.at("order-0") == condensed);
  CHECK(by_id.at("order-1") == condensed);
  CHECK(journal.records().size() == 4);
}

TEST_CASE("an invocation condensed by automatic compaction returns its outcome after a restart, running nothing",
          "[compaction]") {
  durable::memory_journal journal;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, journal, {.compact_after_records = 5}};
    register_all(journaled);
    CHECK(journaled.start("order-7", three_adds, 70).get() == 73);
  }
  REQUIRE(record_types(journal).at("order-7") == condensed);
  adds = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal};
  register_all(journaled);
  journaled.recover();
  CHECK(journaled.finished_invocations() == 1);
  auto again = journaled.start("order-7", three_adds, 0);
  CHECK(again.finished());
  CHECK(again.get() == 73);
  CHECK(adds == 0);
}

TEST_CASE("automatic compaction keeps every record of a running invocation, which resumes after a restart",
          "[compaction]") {
  durable::memory_journal journal;
  std::vector<type> running_before;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, journal, {.compact_after_records = 8}};
    register_all(journaled);
    compaction_events events(rt);
    journaled.start("sleeper", add_sleep_add, 100);
    drive_for(rt, 1min);  // its first call is done; it sleeps for the rest of the hour
    running_before = record_types(journal).at("sleeper");
    for (int i = 0; i < 2; ++i) journaled.start("order-" + std::to_string(i), three_adds, i).get();
    REQUIRE(events.compacted.size() == 1);
    CHECK(record_types(journal).at("sleeper") == running_before);
  }  // a crash while it sleeps
  adds = 0;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal};
  register_all(journaled);
  journaled.recover();
  CHECK(journaled.start("sleeper", add_sleep_add, 0).get() == 102);
  CHECK(adds == 1);  // only the call after the sleep ran
}

TEST_CASE("automatic compaction forgets no id: starting a condensed id again runs nothing", "[compaction]") {
  durable::memory_journal journal;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal, {.compact_after_records = 5}};
  register_all(journaled);
  CHECK(journaled.start("order-1", three_adds, 1).get() == 4);
  REQUIRE(record_types(journal).at("order-1") == condensed);
  adds = 0;
  CHECK(journaled.start("order-1", three_adds, 1000).get() == 4);
  CHECK(adds == 0);
  CHECK_THROWS_AS(journaled.start("order-1", add_sleep_add, 1), std::invalid_argument);
}

TEST_CASE("automatic compaction is off when compact_after_records is 0", "[compaction]") {
  durable::memory_journal journal;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal, {.compact_after_records = 0}};
  register_all(journaled);
  compaction_events events(rt);
  for (int i = 0; i < 20; ++i) journaled.start("order-" + std::to_string(i), three_adds, i).get();
  CHECK(events.compacted.empty());
  CHECK(journal.records().size() == 100);
}

TEST_CASE("automatic compaction is on by default, after 100,000 records", "[compaction]") {
  CHECK(durable::invocations_options{}.compact_after_records == 100'000);
}

TEST_CASE("a failed automatic compaction is a compaction_failed event and changes nothing", "[compaction]") {
  journal_with_failing_compaction journal;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal, {.compact_after_records = 5}};
  register_all(journaled);
  compaction_events events(rt);
  CHECK(journaled.start("order-1", three_adds, 1).get() == 4);
  REQUIRE(events.failed.size() == 1);
  CHECK(events.failed_reasons.at(0) == durable::failure_reason::journal_failed);
  CHECK_THAT(events.failed.at(0), Catch::Contains("automatic journal compaction failed") &&
                                      Catch::Contains("write compacted journal"));
  CHECK(journal.records().size() == 5);
  // Tried again once the journal has doubled (10 records), not at every finish (15).
  CHECK(journaled.start("order-2", three_adds, 2).get() == 5);
  CHECK(journal.compactions_tried == 2);
  CHECK(journaled.start("order-3", three_adds, 3).get() == 6);
  CHECK(journal.compactions_tried == 2);
  journal.fail_compaction = false;
  CHECK(journaled.start("order-4", three_adds, 4).get() == 7);  // 20 records
  CHECK(journal.compactions_tried == 3);
  CHECK(events.compacted.size() == 1);
  CHECK(journal.records().size() == 8);
}

TEST_CASE("automatic compaction is due after the threshold, then once the journal grew by what it kept",
          "[compaction]") {
  durable::detail::compaction_schedule schedule(100);
  CHECK_FALSE(schedule.due(99));
  CHECK(schedule.due(100));
  schedule.compacted(100, 400);  // kept 400 records
  CHECK_FALSE(schedule.due(200));
  CHECK_FALSE(schedule.due(499));
  CHECK(schedule.due(500));
  durable::detail::compaction_schedule off(0);
  CHECK_FALSE(off.due(1'000'000));
}

TEST_CASE("condensing keeps a record that is not the runtime's", "[compaction]") {
  durable::memory_journal j;
  const std::vector<std::byte> foreign{std::byte{0xFF}};
  static_cast<void>(j.append(9, foreign));
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j, {.compact_after_records = 1}};
  journaled.register_function(add_one);
  journaled.register_function(three_adds);
  CHECK(journaled.start("a", three_adds, 1).get() == 4);
  const auto records = j.records();
  CHECK(records.size() == 3);  // condensed: the foreign record, and the invocation's started record and outcome
  CHECK(std::find(records.begin(), records.end(), durable::journal_record{9, foreign}) != records.end());
}
