// Automatic journal compaction on worker threads, while other invocations append.
// Assertions stay on the test thread.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <atomic>
#include <string>
#include <vector>

using durable::durable_task;

namespace {

inline constexpr durable::function double_it{"ct.double", [](int x) -> durable_task<int> { co_return 2 * x; }};
inline constexpr durable::function twice{"ct.twice", [](int x) -> durable_task<int> {
  const int a = co_await double_it(x);
  co_return co_await double_it(a);
}};

}  // namespace

TEST_CASE("automatic compaction on workers, while invocations append, keeps every outcome", "[threads][compaction]") {
  durable::memory_journal journal;
  constexpr int invocations = 300;
  std::atomic<int> compactions{0};
  {
    durable::runtime rt{{.workers = 2}};
    durable::invocations journaled{rt, journal, {.compact_after_records = 64}};
    journaled.register_function(double_it);
    journaled.register_function(twice);
    rt.on_event([&compactions](const durable::event& e) {
      if (e.kind == durable::event_kind::journal_compacted) compactions.fetch_add(1);
    });
    std::vector<durable::invocation<int>> started;
    for (int i = 0; i < invocations; ++i) started.push_back(journaled.start("n" + std::to_string(i), twice, i));
    for (int i = 0; i < invocations; ++i) CHECK(started[static_cast<std::size_t>(i)].get() == 4 * i);
  }
  CHECK(compactions.load() >= 1);
  // After a restart every id is finished with its outcome.
  durable::runtime rt{{.workers = 0}};
  durable::invocations journaled{rt, journal};
  journaled.register_function(double_it);
  journaled.register_function(twice);
  journaled.recover();
  CHECK(journaled.finished_invocations() == invocations);
  for (int i = 0; i < invocations; ++i) CHECK(journaled.start("n" + std::to_string(i), twice, -1).get() == 4 * i);
}
