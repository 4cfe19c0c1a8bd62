// What the multi-process tests run: a five-step function whose every step leaves a line in a
// side-effect log, shared by the worker program (worker.cpp) and the tests that drive it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>

namespace scenario {

/// The side-effect log every step appends to: $DURABLE_TEST_EFFECTS.
inline int effects_fd() {
  static const int fd = [] {
    const char* path = std::getenv("DURABLE_TEST_EFFECTS");
    return path == nullptr ? -1 : ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }();
  return fd;
}

inline std::int64_t realtime_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

/// A step's side effect: one line "<id> <step> <token> <realtime ns> <pid>", written with one
/// write(2) on an O_APPEND file, so that lines of processes killed at any moment never mix.
inline std::uint64_t record_effect(const std::string& id, int step) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const std::uint64_t token = random() >> 1;
  char line[256];
  const int n = std::snprintf(line, sizeof line, "%s %d %llu %lld %d\n", id.c_str(), step,
                              static_cast<unsigned long long>(token), static_cast<long long>(realtime_ns()),
                              static_cast<int>(::getpid()));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof line || ::write(effects_fd(), line, static_cast<std::size_t>(n)) != n)
    std::abort();  // the test's evidence is gone: nothing it checks could be trusted
  return token;
}

/// One step: its side effect, then its token as its result.
inline constexpr durable::function step{"step", [](std::string id, int k) -> durable::durable_task<std::uint64_t> {
                                          co_return record_effect(id, k);
                                        }};

/// Five steps one after the other; the result is their tokens, in order.
inline constexpr durable::function five_steps{
    "five_steps", [](std::string id) -> durable::durable_task<std::vector<std::uint64_t>> {
      std::vector<std::uint64_t> tokens;
      for (int k = 1; k <= 5; ++k) tokens.push_back(co_await step(id, k));
      co_return tokens;
    }};

inline void register_all(durable::invocations& invocations) {
  invocations.register_function(step);
  invocations.register_function(five_steps);
}

}  // namespace scenario
