// The runtime's shared ready queue (detail/handle_fifo.hpp): first in, first out, through the
// compaction that keeps its vector from growing without bound.
#include <catch2/catch.hpp>

#include <durable/detail/handle_fifo.hpp>

#include <coroutine>
#include <cstdint>
#include <vector>

namespace {

// Distinct handles that are never resumed: the queue only stores and returns them.
std::coroutine_handle<> handle_number(std::uintptr_t n) {
  return std::coroutine_handle<>::from_address(reinterpret_cast<void*>((n + 1) * 16));
}

}  // namespace

TEST_CASE("the ready queue hands handles back in the order they were pushed", "[runtime][queue]") {
  durable::detail::handle_fifo fifo;
  std::uintptr_t pushed = 0;
  std::uintptr_t popped = 0;
  // Pushes and pops interleaved, the queue never quite emptying: its vector fills with popped
  // handles again and again, so the compaction runs many times.
  for (int round = 0; round < 2000; ++round) {
    for (int i = 0; i < 3; ++i) fifo.push_back(handle_number(pushed++));
    for (int i = 0; i < 2; ++i) {
      REQUIRE(fifo.front() == handle_number(popped++));
      fifo.pop_front();
    }
    REQUIRE(fifo.size() == pushed - popped);
  }
  while (!fifo.empty()) {
    REQUIRE(fifo.front() == handle_number(popped++));
    fifo.pop_front();
  }
  CHECK(popped == pushed);
}

TEST_CASE("the ready queue is empty after clear and takes new handles", "[runtime][queue]") {
  durable::detail::handle_fifo fifo;
  for (std::uintptr_t i = 0; i < 10; ++i) fifo.push_back(handle_number(i));
  fifo.pop_front();
  fifo.clear();
  CHECK(fifo.empty());
  CHECK(fifo.size() == 0);
  fifo.push_back(handle_number(42));
  CHECK(fifo.front() == handle_number(42));
}
