// The per-thread frame pool (detail/frame_pool.hpp): what its one-counter free path must keep.
// Each case runs on a thread of its own, so it starts from an empty cache; assertions are made
// on the test thread, after the join (Catch2 is not thread-safe).
#include <catch2/catch.hpp>

#include <durable/detail/frame_pool.hpp>
#include <durable/runtime.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <thread>
#include <vector>

// Under AddressSanitizer frames go to the global allocator: there is no pool to test.
#if !DURABLE_DETAIL_ASAN

namespace {

using durable::detail::allocate_frame;
using durable::detail::deallocate_frame;
using durable::detail::frame_granule;
using durable::detail::frames_kept_per_class;
using durable::detail::frames_of_this_thread;

// A size no frame of the library's has in these tests, so the class is this file's alone.
constexpr std::size_t test_size = 1000;
constexpr std::size_t test_class = (test_size - 1) / frame_granule;
constexpr auto kept = static_cast<std::size_t>(frames_kept_per_class);

std::size_t count(durable::detail::free_frame* f) {
  std::size_t n = 0;
  for (; f != nullptr; f = f->next) ++n;
  return n;
}

// One batch of the test's class, straight from the allocator.
durable::detail::free_frame* new_batch() {
  durable::detail::free_frame* batch = nullptr;
  for (std::size_t i = 0; i < durable::detail::depot_batch; ++i) {
    auto* f = static_cast<durable::detail::free_frame*>(::operator new(test_size));
    f->next = batch;
    batch = f;
  }
  return batch;
}

// Gives the depot one batch of the test's class, in slot 0.
void give_the_depot_a_batch() {
  REQUIRE(durable::detail::shared_frame_depot.give(test_class, new_batch(), test_size, 0));
}

// Takes every batch of the test's class the depot keeps, frees them, and says how many.
std::size_t empty_the_depot() {
  std::size_t batches = 0;
  while (durable::detail::free_frame* batch = durable::detail::shared_frame_depot.take(test_class, 0)) {
    durable::detail::free_chain(batch);
    ++batches;
  }
  return batches;
}

// The frames this thread keeps of the test's class: its list in use and its spare batch.
std::size_t cached_in_test_class() {
  return count(frames_of_this_thread.heads[test_class]) + count(frames_of_this_thread.spare[test_class]);
}

// Built before the thread's first free, so destroyed after the pool's release at thread exit.
struct frees_at_thread_exit {
  bool* freed_to_global;
  ~frees_at_thread_exit() {
    deallocate_frame(allocate_frame(test_size), test_size);
    *freed_to_global = frames_of_this_thread.heads[test_class] == nullptr;
  }
};

}  // namespace

TEST_CASE("a freed frame is reused by the next frame of its class", "[frame_pool][threaded]") {
  void* first = nullptr;
  void* second = nullptr;
  std::thread([&] {
    first = allocate_frame(test_size);
    deallocate_frame(first, test_size);  // the thread's first free opens its cache
    second = allocate_frame(test_size);
    deallocate_frame(second, test_size);
  }).join();
  CHECK(second == first);
}

TEST_CASE("a frame freed on another thread joins that thread's list", "[frame_pool][threaded]") {
  void* frame = allocate_frame(test_size);
  void* cached = nullptr;
  void* reused = nullptr;
  std::thread([&] {
    deallocate_frame(frame, test_size);
    cached = frames_of_this_thread.heads[test_class];
    reused = allocate_frame(test_size);
    deallocate_frame(reused, test_size);
  }).join();
  CHECK(cached == frame);
  CHECK(reused == frame);
}

TEST_CASE("a class keeps at most frames_kept_per_class frames; the rest go to the depot", "[frame_pool][threaded]") {
  std::vector<std::size_t> counts;
  std::thread([&counts] {
    std::vector<void*> frames;
    for (std::size_t i = 0; i < kept + 10; ++i) frames.push_back(allocate_frame(test_size));
    for (void* f : frames) deallocate_frame(f, test_size);  // a batch goes to the depot
    counts.push_back(cached_in_test_class());
    // Reusing some makes room for as many again, and no more.
    for (std::size_t i = 0; i < 20; ++i) frames[i] = allocate_frame(test_size);
    counts.push_back(cached_in_test_class());
    for (std::size_t i = 0; i < 20; ++i) deallocate_frame(frames[i], test_size);
    counts.push_back(cached_in_test_class());
  }).join();
  // 266 freed: two batches of 128 kept (the first went to the depot when the third filled),
  // 10 in the new list.
  CHECK(counts[0] <= kept);
  CHECK(counts[1] == counts[0] - 20);
  CHECK(counts[2] == counts[0]);
}

TEST_CASE("frames freed on one thread are reused by another through the depot", "[frame_pool][threaded]") {
  // A producer's frames, finished on a consumer thread: the consumer's full lists hand batches
  // to the depot, and a new thread with empty lists takes them instead of the allocator's.
  constexpr std::size_t n = 4 * durable::detail::depot_batch;
  std::vector<void*> frames;
  for (std::size_t i = 0; i < n; ++i) frames.push_back(allocate_frame(test_size));
  std::thread([&frames] {
    for (void* f : frames) deallocate_frame(f, test_size);
  }).join();  // the consumer's exit frees what it kept; the depot keeps what it was given
  std::size_t reused = 0;
  std::thread([&frames, &reused] {
    std::vector<void*> again;
    for (std::size_t i = 0; i < durable::detail::depot_batch; ++i) again.push_back(allocate_frame(test_size));
    for (void* f : again) reused += std::find(frames.begin(), frames.end(), f) != frames.end() ? 1 : 0;
    for (void* f : again) deallocate_frame(f, test_size);
  }).join();
  CHECK(reused == durable::detail::depot_batch);
}

TEST_CASE("the depot hands a slot back its own batches before those of other slots", "[frame_pool]") {
  durable::detail::frame_depot depot;  // a depot of the test's own, empty
  durable::detail::free_frame* mine = new_batch();
  durable::detail::free_frame* theirs = new_batch();
  REQUIRE(depot.give(test_class, mine, test_size, 1));
  REQUIRE(depot.give(test_class, theirs, test_size, 2));
  durable::detail::free_frame* first = depot.take(test_class, 1);
  durable::detail::free_frame* second = depot.take(test_class, 1);  // none of its own left
  durable::detail::free_frame* third = depot.take(test_class, 1);
  CHECK(first == mine);
  CHECK(second == theirs);
  CHECK(third == nullptr);
  durable::detail::free_chain(mine);
  durable::detail::free_chain(theirs);
}

TEST_CASE("at thread exit the cache is released and later frees go to the global allocator",
          "[frame_pool][threaded]") {
  bool freed_to_global = false;
  bool cached_before_exit = false;
  std::thread([&] {
    static thread_local frees_at_thread_exit late{&freed_to_global};
    static_cast<void>(late);
    void* frame = allocate_frame(test_size);
    deallocate_frame(frame, test_size);  // opens the cache, if taking a batch from the depot did not
    cached_before_exit = frames_of_this_thread.heads[test_class] == frame;
  }).join();
  CHECK(cached_before_exit);
  CHECK(freed_to_global);
}

TEST_CASE("when the last runtime ends, the frames the depot kept go back to the allocator", "[frame_pool][runtime]") {
  durable::manual_clock clock;
  std::optional<durable::runtime> rt(std::in_place, clock);
  static_cast<void>(empty_the_depot());
  give_the_depot_a_batch();
  rt.reset();
  CHECK(empty_the_depot() == 0);
}

TEST_CASE("a runtime that ends while another lives leaves the depot's frames to it", "[frame_pool][runtime]") {
  durable::manual_clock clock;
  durable::runtime staying(clock);
  std::optional<durable::runtime> leaving(std::in_place, clock);
  static_cast<void>(empty_the_depot());
  give_the_depot_a_batch();
  leaving.reset();
  CHECK(empty_the_depot() == 1);
}

#endif
