// Helpers shared by the tests: an event recorder and small task factories.
#pragma once

#include <durable/durable.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace test_support {

/// Records every event of a runtime, for assertions on the test thread after `run` returns.
struct recorder {
  std::vector<durable::event> events;

  explicit recorder(durable::runtime& rt) {
    rt.on_event([this](const durable::event& e) { events.push_back(e); });
  }

  [[nodiscard]] std::vector<durable::event> of(durable::event_kind kind) const {
    std::vector<durable::event> out;
    for (const auto& e : events)
      if (e.kind == kind) out.push_back(e);
    return out;
  }

  /// The delays of every retry_scheduled event, in milliseconds.
  [[nodiscard]] std::vector<std::int64_t> delays_ms() const {
    std::vector<std::int64_t> out;
    for (const auto& e : of(durable::event_kind::retry_scheduled))
      out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count());
    return out;
  }

  [[nodiscard]] std::size_t count(durable::event_kind kind) const { return of(kind).size(); }
};

/// Milliseconds since the manual clock's epoch.
inline std::int64_t ms_since_epoch(durable::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace test_support
