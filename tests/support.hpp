// Helpers shared by the tests: an event recorder and small task factories.
#pragma once

#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <utility>
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

/// Counts its live instances in a counter the test owns: a test checks that a frame holding one
/// was freed (its destructors ran) by reading the counter.
class tracked {
 public:
  explicit tracked(std::atomic<int>& live) noexcept : live_(&live) { live_->fetch_add(1); }
  tracked(const tracked& other) noexcept : live_(other.live_) { live_->fetch_add(1); }
  tracked& operator=(const tracked&) = delete;
  ~tracked() { live_->fetch_sub(1); }

 private:
  std::atomic<int>* live_;
};

/// An awaitable that durable does not own (standing for a socket read): it suspends the task
/// until the test calls `open()`, which resumes it on the calling thread.
class gate {
 public:
  struct awaiter {
    gate* g;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { g->waiter_.store(h.address()); }
    void await_resume() const noexcept {}
  };
  awaiter wait() noexcept { return {this}; }
  [[nodiscard]] bool waiting() const noexcept { return waiter_.load() != nullptr; }
  void open() { std::coroutine_handle<>::from_address(waiter_.exchange(nullptr)).resume(); }

 private:
  std::atomic<void*> waiter_{nullptr};
};

}  // namespace test_support
