// Prints a runtime's events as a short log: "[  0.300s] fetch_profile #2 failed: TEMPORARY_ERROR".
#pragma once

#include <durable/durable.hpp>

#include <chrono>
#include <cstdio>
#include <string>

inline void print_events(durable::runtime& rt) {
  rt.on_event([](const durable::event& e) {
    using std::chrono::duration;
    const double at = duration<double>(e.time.time_since_epoch()).count();
    const std::string name(e.function_name);
    switch (e.kind) {
      case durable::event_kind::attempt_started:
        std::printf("[%8.3fs] %s: attempt %u\n", at, name.c_str(), e.attempt);
        break;
      case durable::event_kind::attempt_failed:
        std::printf("[%8.3fs] %s: attempt %u failed: %s\n", at, name.c_str(), e.attempt,
                    std::string(durable::to_string(e.code)).c_str());
        break;
      case durable::event_kind::retry_scheduled:
        std::printf("[%8.3fs] %s: retry in %.3fs\n", at, name.c_str(),
                    duration<double>(e.delay).count());
        break;
      case durable::event_kind::succeeded:
        std::printf("[%8.3fs] %s: succeeded on attempt %u\n", at, name.c_str(), e.attempt);
        break;
      case durable::event_kind::failed:
        std::printf("[%8.3fs] %s: gave up after attempt %u: %s\n", at, name.c_str(), e.attempt,
                    std::string(durable::to_string(e.code)).c_str());
        break;
      case durable::event_kind::restarted:
        std::printf("[%8.3fs] %s: the code changed: starting again from scratch\n", at, name.c_str());
        break;
    }
  });
}
