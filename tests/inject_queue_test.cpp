// The ring that takes what threads outside a runtime post to its workers
// (detail/inject_queue.hpp): first in, first out, a full ring refuses without changing, and
// batches come out in order.
#include <catch2/catch.hpp>

#include <durable/detail/inject_queue.hpp>

#include <coroutine>
#include <cstdint>
#include <memory>
#include <vector>

using durable::detail::inject_queue;

namespace {

// Distinct handles that are never resumed: the ring only stores and returns them.
std::coroutine_handle<> handle_number(std::uintptr_t n) {
  return std::coroutine_handle<>::from_address(reinterpret_cast<void*>((n + 1) * 16));
}

}  // namespace

TEST_CASE("the inject ring hands handles back in the order one thread pushed them, lap after lap",
          "[runtime][queue]") {
  const auto ring = std::make_unique<inject_queue>();
  std::uintptr_t pushed = 0;
  std::uintptr_t taken = 0;
  std::coroutine_handle<> out[7];
  // Three pushes a round, and batches of 1, 2 or 3 taken: two a round on average, so the ring
  // fills up to its capacity and the positions go round it many times.
  for (std::size_t round = 0; round < 12000; ++round) {
    for (int i = 0; i < 3 && pushed - taken < inject_queue::capacity; ++i) REQUIRE(ring->push(handle_number(pushed++)));
    const std::size_t n = ring->take(out, round % 3 + 1);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(out[i] == handle_number(taken++));
  }
  for (std::size_t n; (n = ring->take(out, 7)) != 0;) {
    for (std::size_t i = 0; i < n; ++i) REQUIRE(out[i] == handle_number(taken++));
  }
  CHECK(taken == pushed);
  CHECK(pushed > 2 * inject_queue::capacity);
  CHECK(ring->empty());
}

TEST_CASE("a full inject ring refuses a push and keeps what it holds", "[runtime][queue]") {
  const auto ring = std::make_unique<inject_queue>();
  for (std::uintptr_t i = 0; i < inject_queue::capacity; ++i) REQUIRE(ring->push(handle_number(i)));
  CHECK_FALSE(ring->push(handle_number(inject_queue::capacity)));
  CHECK_FALSE(ring->push(handle_number(inject_queue::capacity)));
  std::vector<std::coroutine_handle<>> out(inject_queue::capacity + 1);
  CHECK(ring->take(out.data(), out.size()) == inject_queue::capacity);
  for (std::uintptr_t i = 0; i < inject_queue::capacity; ++i) REQUIRE(out[i] == handle_number(i));
  CHECK(ring->empty());
  CHECK(ring->push(handle_number(7)));  // room again
  CHECK_FALSE(ring->empty());
}

TEST_CASE("taking from an empty inject ring takes nothing", "[runtime][queue]") {
  const auto ring = std::make_unique<inject_queue>();
  std::coroutine_handle<> out[4]{};
  CHECK(ring->empty());
  CHECK(ring->take(out, 4) == 0);
  REQUIRE(ring->push(handle_number(1)));
  CHECK(ring->take(out, 4) == 1);
  CHECK(out[0] == handle_number(1));
  CHECK(ring->take(out, 4) == 0);
}
