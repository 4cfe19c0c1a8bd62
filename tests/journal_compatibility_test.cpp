// Journals written by earlier versions still open and recover. tests/data/journal-0.1.0.bin was
// written by durable 0.1.0 before journaled invocations became their own layer (the program is
// in tests/data/README.md): "done" finished with 42, "sleeping" sleeps until 1 h, and "retrying"
// waits for its flaky call's retry at 10 min; the process then stopped at 1 min.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/file_journal.hpp>
#include <durable/invocations.hpp>

#include <chrono>
#include <filesystem>

#include "journal_support.hpp"

using namespace std::chrono_literals;
using durable::durable_task;

namespace {

// The functions of the program that wrote the file, with the same names and types.
int step_runs = 0;
int flaky_runs = 0;
inline constexpr durable::function step{"fx.step", [](int x) -> durable_task<int> {
  ++step_runs;
  co_return x + 1;
}};
inline constexpr durable::function flaky{"fx.flaky",
                                         [](int x) -> durable_task<int> {
                                           ++flaky_runs;
                                           co_return x * 10;
                                         },
                                         {.initial_delay = 10min, .multiplier = 1.0, .max_delay = 10min,
                                          .jitter = durable::jitter::none}};
inline constexpr durable::function sleeper{"fx.sleeper", [](int x) -> durable_task<int> {
  const int a = co_await step(x);
  co_await durable::sleep_for(1h);
  co_return co_await step(a);
}};
inline constexpr durable::function retrier{"fx.retrier", [](int x) -> durable_task<int> {
  const int a = co_await step(x);
  co_return co_await flaky(a);
}};

}  // namespace

TEST_CASE("a journal written by durable 0.1.0 opens and recovers, and its invocations finish where they were",
          "[journal][compatibility]") {
  journal_support::temp_dir dir;
  const std::filesystem::path copy = dir.file("journal");
  std::filesystem::copy_file(std::filesystem::path(DURABLE_TEST_DATA_DIR) / "journal-0.1.0.bin", copy);
  durable::file_journal journal(copy);
  CHECK(journal.recovery().damage == durable::journal_damage::none);
  CHECK_FALSE(journal.recovery().created);

  durable::manual_clock clock{durable::time_point{} + 1min};  // where the old process stopped
  durable::runtime rt{clock};
  durable::invocations journaled{rt, journal};
  journaled.register_function(step);
  journaled.register_function(flaky);
  journaled.register_function(sleeper);
  journaled.register_function(retrier);
  journaled.recover();

  CHECK(journaled.start("done", step, 0).get() == 42);  // replayed: nothing runs
  CHECK(journaled.start("retrying", retrier, 0).get() == 60);
  CHECK(clock.now() == durable::time_point{} + 10min);  // at its recorded retry time
  CHECK(flaky_runs == 1);
  CHECK(journaled.start("sleeping", sleeper, 0).get() == 3);
  CHECK(clock.now() == durable::time_point{} + 1h);  // its recorded wake-up, not an hour from now
  CHECK(step_runs == 1);  // only the sleeper's second step: every recorded step was replayed
}
