// durable/log.hpp: events as one log line each.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
using durable::durable_task;
using durable::event;
using durable::event_kind;
using durable::failure_reason;
using durable::status;

TEST_CASE("format_event writes an attempt's failure with its status, reason and message", "[log]") {
  event e{event_kind::attempt_failed, "fetch", 2, status::dns_error, {}, durable::time_point{} + 1500ms};
  CHECK(durable::format_event(e) == "[   1.500s] fetch: attempt 2 failed: DNS_ERROR");
  e.message = "no such host";
  CHECK(durable::format_event(e) == "[   1.500s] fetch: attempt 2 failed: DNS_ERROR: no such host");
  e.kind = event_kind::failed;
  e.reason = failure_reason::cancelled;
  CHECK(durable::format_event(e) == "[   1.500s] fetch: gave up after attempt 2: DNS_ERROR (cancelled): no such host");
}

TEST_CASE("format_event writes every other kind as one line", "[log]") {
  const durable::time_point t{};
  CHECK(durable::format_event({event_kind::attempt_started, "f", 1, status::ok, {}, t}) == "[   0.000s] f: attempt 1");
  CHECK(durable::format_event({event_kind::succeeded, "f", 3, status::ok, {}, t}) ==
        "[   0.000s] f: succeeded on attempt 3");
  CHECK(durable::format_event({event_kind::retry_scheduled, "f", 1, status::timeout, 250ms, t}) ==
        "[   0.000s] f: retry in 0.250s");
  event hinted{event_kind::retry_scheduled, "f", 1, status::throttled, 30s, t};
  hinted.retry_after = 30s;
  CHECK(durable::format_event(hinted) == "[   0.000s] f: retry in 30.000s (as the failure's retry-after hint asked)");
  CHECK(durable::format_event({event_kind::restarted, "f", 0, status::incompatible_state, {}, t}) ==
        "[   0.000s] f: the code changed: starting again from scratch");
  CHECK(durable::format_event({event_kind::attempt_started, "", 1, status::ok, {}, t}) ==
        "[   0.000s] (unnamed): attempt 1");
}

TEST_CASE("log_events_to an ostream writes a runtime's events as lines", "[log]") {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  std::ostringstream out;
  rt.on_event(durable::log_events_to(out));
  int attempts = 0;
  const durable::function flaky{"flaky",
                                [&attempts]() -> durable_task<int> {
                                  if (++attempts == 1) co_yield durable::fail(status::temporary_error, "busy");
                                  co_return attempts;
                                },
                                {.initial_delay = 2s, .jitter = durable::jitter::none}};
  CHECK(rt.run(flaky()) == 2);
  CHECK(out.str() ==
        "[   0.000s] flaky: attempt 1\n"
        "[   0.000s] flaky: attempt 1 failed: TEMPORARY_ERROR: busy\n"
        "[   0.000s] flaky: retry in 2.000s\n"
        "[   2.000s] flaky: attempt 2\n"
        "[   2.000s] flaky: succeeded on attempt 2\n");
}

TEST_CASE("log_events_to a FILE writes the same lines", "[log]") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    rt.on_event(durable::log_events_to(file));
    const durable::function once{"once", []() -> durable_task<int> { co_return 1; }};
    CHECK(rt.run(once()) == 1);
  }
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text += static_cast<char>(c);
  std::fclose(file);
  CHECK(text == "[   0.000s] once: attempt 1\n[   0.000s] once: succeeded on attempt 1\n");
}
