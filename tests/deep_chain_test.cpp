// Deep synchronous await chains must never overflow the stack, at any optimisation level
// (see detail/trampoline.hpp). This file is built with every preset in CI, -O0 included.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <chrono>
#include <cstdint>

using durable::durable_task;

namespace {

durable_task<int> one() { co_return 1; }

durable_task<std::int64_t> sequential_awaits(int count) {
  std::int64_t sum = 0;
  for (int i = 0; i < count; ++i) sum += co_await one();
  co_return sum;
}

durable_task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

durable_task<> nested_void(int depth, int& reached) {
  if (depth == 0) {
    reached = 1;
    co_return;
  }
  co_await nested_void(depth - 1, reached);
}

}  // namespace

TEST_CASE("a million sequential awaits of synchronously completing tasks do not grow the stack",
          "[task][deep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  CHECK(rt.run(sequential_awaits(1'000'000)) == 1'000'000);
}

TEST_CASE("a chain of tasks nested two hundred thousand deep completes", "[task][deep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  CHECK(rt.run(nested(200'000)) == 200'000);
}

TEST_CASE("a void chain nested two hundred thousand deep completes", "[task][deep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  int reached = 0;
  rt.run(nested_void(200'000, reached));
  CHECK(reached == 1);
}

namespace {
// Every level sleeps after its child returned: each looks up its call's runtime through the
// chain of tasks above it (found once and remembered on the way, so the chain is walked once).
durable_task<int> nested_sleeper(int depth) {
  int below = 0;
  if (depth > 0) below = co_await nested_sleeper(depth - 1);
  co_await durable::sleep_for(std::chrono::milliseconds(1));
  co_return below + 1;
}
}  // namespace

TEST_CASE("every task of a chain two hundred thousand deep finds its runtime", "[task][deep][sleep]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  CHECK(rt.run(nested_sleeper(200'000)) == 200'001);
  CHECK(clock.now() - durable::time_point{} == std::chrono::milliseconds(200'001));
}
