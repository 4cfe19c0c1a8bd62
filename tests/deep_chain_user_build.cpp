// A user's plain debug build: compiled with -O0 -g and none of durable's workaround flags
// (no -foptimize-sibling-calls), so symmetric transfer is never a tail call here. A million
// synchronous awaits must still run (the library bounds the stack itself).
#include <durable/durable.hpp>

#include <cstdint>
#include <cstdio>

namespace {
durable::durable_task<int> one() { co_return 1; }

durable::durable_task<std::int64_t> sequential_awaits(int count) {
  std::int64_t sum = 0;
  for (int i = 0; i < count; ++i) sum += co_await one();
  co_return sum;
}

durable::durable_task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}
}  // namespace

int main() {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const std::int64_t sum = rt.run(sequential_awaits(1'000'000));
  const int depth = rt.run(nested(200'000));
  std::printf("sequential awaits: %lld, nested depth: %d\n", static_cast<long long>(sum), depth);
  return sum == 1'000'000 && depth == 200'000 ? 0 : 1;
}
