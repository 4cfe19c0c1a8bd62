// The program of the packaging test (scripts/test-packaging): built against an installed
// durable (find_package, pkg-config, the .deb) and against a source tree (add_subdirectory).
// A call that fails twice is retried, on a manual clock, and succeeds.
#include <durable/durable.hpp>

#include <cstdio>

int attempts = 0;

inline constexpr durable::function answer{"answer", []() -> durable::durable_task<int> {
                                             if (++attempts < 3) throw durable::error(durable::status::temporary_error, "not yet");
                                             co_return 42;
                                           }};

int main() {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  const int value = rt.run(answer());
  std::printf("answer %d after %d attempts\n", value, attempts);
  return value == 42 && attempts == 3 ? 0 : 1;
}
