// What events say about failures: why (event::reason), the message, the retry-after hint.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event_kind;
using durable::failure_reason;
using durable::status;

namespace {

/// An event as a test keeps it: the message copied (the event's view is valid only during the
/// callback).
struct seen_event {
  event_kind kind;
  std::string name;
  std::uint32_t attempt;
  status code;
  std::optional<failure_reason> reason;
  std::string message;
  std::optional<std::chrono::nanoseconds> retry_after;
};

struct event_log {
  std::vector<seen_event> events;
  explicit event_log(durable::runtime& rt) {
    rt.on_event([this](const durable::event& e) {
      events.push_back({e.kind, std::string(e.function_name), e.attempt, e.code, e.reason, std::string(e.message),
                        e.retry_after});
    });
  }
  [[nodiscard]] std::vector<seen_event> of(event_kind kind, std::string_view name) const {
    std::vector<seen_event> out;
    for (const auto& e : events)
      if (e.kind == kind && e.name == name) out.push_back(e);
    return out;
  }
};

template <class Task>
void run_ignoring_failure(durable::runtime& rt, Task task) {
  try {
    rt.run(std::move(task));
  } catch (const durable::failure&) {
  }
}

}  // namespace

TEST_CASE("a sibling stopped by gather is reported as cancelled, not as a permanent error", "[events][cancel]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  event_log log(rt);
  const durable::function slow{"slow", []() -> durable_task<int> {
                                 co_await durable::sleep_for(1h);
                                 co_return 1;
                               }};
  const durable::function broken{"broken", []() -> durable_task<int> {
                                   co_await durable::sleep_for(1s);
                                   co_yield durable::fail(status::permanent_error, "the disk is on fire");
                                   co_return 0;
                                 }};
  auto both = durable::gather(slow(), broken());
  run_ignoring_failure(rt, std::move(both));

  const auto stopped = log.of(event_kind::failed, "slow");
  REQUIRE(stopped.size() == 1);
  CHECK(stopped[0].reason == failure_reason::cancelled);
  const auto stopped_attempt = log.of(event_kind::attempt_failed, "slow");
  REQUIRE(stopped_attempt.size() == 1);
  CHECK(stopped_attempt[0].reason == failure_reason::cancelled);

  const auto real = log.of(event_kind::failed, "broken");
  REQUIRE(real.size() == 1);
  CHECK(real[0].code == status::permanent_error);
  CHECK(real[0].reason == failure_reason::fatal_status);
  CHECK(real[0].message == "the disk is on fire");
}

TEST_CASE("attempt_failed and retry_scheduled carry the fail text and its retry-after hint", "[events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  event_log log(rt);
  int attempts = 0;
  const durable::function throttled{"throttled", [&attempts]() -> durable_task<int> {
                                      if (++attempts == 1) co_yield durable::fail(status::throttled, "slow down", 7s);
                                      co_return attempts;
                                    }};
  CHECK(rt.run(throttled()) == 2);
  const auto failed = log.of(event_kind::attempt_failed, "throttled");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].message == "slow down");
  CHECK(failed[0].retry_after == std::optional<std::chrono::nanoseconds>(7s));
  CHECK_FALSE(failed[0].reason.has_value());  // it is retried
  const auto scheduled = log.of(event_kind::retry_scheduled, "throttled");
  REQUIRE(scheduled.size() == 1);
  CHECK(scheduled[0].retry_after == std::optional<std::chrono::nanoseconds>(7s));
  CHECK(log.of(event_kind::succeeded, "throttled").front().message.empty());
}

TEST_CASE("attempt_failed and failed carry the exception's what(), and failed says the attempts ran out",
          "[events]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  event_log log(rt);
  const durable::function refused{"refused",
                                  []() -> durable_task<int> {
                                    throw std::system_error(std::make_error_code(std::errc::connection_refused),
                                                            "connect 127.0.0.1:9");
                                    co_return 0;
                                  },
                                  {.initial_delay = 1ms, .max_attempts = 2}};
  run_ignoring_failure(rt, refused());
  const auto attempts = log.of(event_kind::attempt_failed, "refused");
  REQUIRE(attempts.size() == 2);
  CHECK_THAT(attempts[0].message, Catch::StartsWith("connect 127.0.0.1:9"));
  CHECK_FALSE(attempts[0].reason.has_value());
  CHECK(attempts[1].reason == failure_reason::attempts_exhausted);
  const auto gave_up = log.of(event_kind::failed, "refused");
  REQUIRE(gave_up.size() == 1);
  CHECK(gave_up[0].code == status::tcp_error);
  CHECK(gave_up[0].reason == failure_reason::attempts_exhausted);
  CHECK_THAT(gave_up[0].message, Catch::StartsWith("connect 127.0.0.1:9"));
}

TEST_CASE("an attempt cut short by its attempt_timeout is reported with reason attempt_timeout", "[events][attempt_timeout]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  event_log log(rt);
  int attempts = 0;
  const durable::function slow_once{"slow_once",
                                    [&attempts]() -> durable_task<int> {
                                      if (++attempts == 1) co_await durable::sleep_for(1h);
                                      co_return attempts;
                                    },
                                    {.initial_delay = 1ms, .attempt_timeout = 1s}};
  CHECK(rt.run(slow_once()) == 2);
  const auto failed = log.of(event_kind::attempt_failed, "slow_once");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].code == status::timeout);
  CHECK(failed[0].reason == failure_reason::attempt_timeout);
  CHECK_THAT(failed[0].message, Catch::Contains("attempt_timeout of 1000 ms"));
}

TEST_CASE("a call stopped while it waits to retry is reported failed as cancelled, with why", "[events][cancel]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  event_log log(rt);
  std::stop_source source;
  const durable::function flaky{"flaky", []() -> durable_task<int> {
                                  co_yield durable::fail(status::temporary_error, "not yet");
                                  co_return 0;
                                }};
  auto stopper = [](std::stop_source& s) -> durable_task<> {
    co_await durable::sleep_for(1s);
    s.request_stop();
  };
  rt.spawn(stopper(source));
  try {
    rt.run(flaky(), source.get_token());
  } catch (const durable::failure&) {
  }
  const auto failed = log.of(event_kind::failed, "flaky");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].code == status::temporary_error);
  CHECK(failed[0].reason == failure_reason::cancelled);
  CHECK(failed[0].message == "cancelled while waiting to retry");
}
