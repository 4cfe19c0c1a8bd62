// durable/detail/frame_pool.hpp — per-thread recycling of coroutine frames.
//
// g++ 12 never elides a frame allocation and clang's elision is unreliable, so every task
// costs a malloc and a free (~20 ns, about as much as the rest of a create+await). Frames come
// in few sizes, so a thread-local free list per 16-byte size class makes them nearly free, the
// way Asio and Boost.Cobalt recycle theirs. A frame freed on another thread joins that
// thread's lists; a list that fills up and a list that runs dry trade whole batches through a
// shared depot (frame_depot.hpp), so that work created on one thread and finished on another
// does not fall back on the allocator. Under AddressSanitizer frames go to the global allocator
// instead, so that a use of a freed frame is still reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "frame_depot.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define DURABLE_DETAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DURABLE_DETAIL_ASAN 1
#endif
#endif
#ifndef DURABLE_DETAIL_ASAN
#define DURABLE_DETAIL_ASAN 0
#endif

namespace durable::detail {

inline constexpr std::size_t frame_granule = 16;  // malloc's own granule: no extra rounding
inline constexpr std::size_t frame_classes = 64;  // frames up to 1 KiB are recycled
/// Frames a thread keeps per class: a list in use and one full batch set aside.
inline constexpr std::int32_t frames_kept_per_class = 2 * static_cast<std::int32_t>(depot_batch);
static_assert(frame_classes <= depot_classes);

// Trivially constructible and destructible, so reading it needs no thread_local init guard;
// the lists are released at thread exit by `frame_cache_release` below.
struct frame_cache {
  /// The list in use, per class: at most `depot_batch` frames.
  free_frame* heads[frame_classes];
  /// How many more frames each list may take. Zero until this thread's first free opens the
  /// cache (registering the release at thread exit), and zero again from thread exit on: so the
  /// cap, the registration and the thread-exit check are one test of one counter per free, and
  /// only a full list (or those two moments) takes the slow path.
  /// Signed: a free decrements it first and tests the sign (see deallocate_frame).
  std::int32_t room[frame_classes];
  /// Per class, one full batch (`depot_batch` frames) set aside when the list in use filled
  /// up: the list then starts again empty, and the batch goes back into use when it runs dry,
  /// or to the depot when the next one fills up. Moving a whole list walks nothing.
  free_frame* spare[frame_classes];
  /// The cache was opened: its release at thread exit is registered.
  bool opened;
  /// The thread is exiting: its lists are gone, and frees go to the global allocator.
  bool exiting;
};
inline thread_local constinit frame_cache frames_of_this_thread{};

struct frame_cache_release {
  ~frame_cache_release() {
    frame_cache& c = frames_of_this_thread;
    c.exiting = true;
    for (std::size_t i = 0; i < frame_classes; ++i) {
      c.room[i] = 0;  // frames freed later in this thread's exit go straight back
      free_chain(std::exchange(c.heads[i], nullptr));
      free_chain(std::exchange(c.spare[i], nullptr));
    }
  }
};

// Registers the release at thread exit and opens every list (all empty until now).
[[gnu::noinline, gnu::cold]] inline void open_frame_cache() noexcept {
  frame_cache& c = frames_of_this_thread;
  static thread_local frame_cache_release release;  // glibc aborts rather than throw here
  static_cast<void>(release);
  c.opened = true;
  for (std::int32_t& r : c.room) r = static_cast<std::int32_t>(depot_batch);
}

/// A free found no room in class `cls` (and took one anyway: its room is -1). True if there
/// is room now for the frame being freed: on this thread's first free the cache opens; a full
/// list is set aside as the spare batch (the spare there before, if any, goes to the depot,
/// or back to the allocator if the depot has no room). False once the thread is exiting: the
/// room is 0 again. Out of line and noexcept, so that the inline free path stays a decrement,
/// a branch and a push in every frame's teardown, with nothing for the unwinder to see.
[[gnu::noinline, gnu::cold]] inline bool make_frame_room(std::size_t cls) noexcept {
  frame_cache& c = frames_of_this_thread;
  if (c.exiting) {
    c.room[cls] = 0;
    return false;
  }
  if (!c.opened) {
    open_frame_cache();
  } else {
    if (free_frame* full = c.spare[cls]; full != nullptr && !shared_frame_depot.give(cls, full, (cls + 1) * frame_granule,
                                                                                        frame_depot::slot_of_this_thread())) {
      free_chain(full);
    }
    c.spare[cls] = std::exchange(c.heads[cls], nullptr);
    c.room[cls] = static_cast<std::int32_t>(depot_batch);
  }
  --c.room[cls];  // the frame being freed
  return true;
}

/// The list of class `cls` is empty: the spare batch, a batch from the depot, or the
/// allocator.
[[gnu::noinline]] inline void* allocate_frame_slowly(std::size_t cls) {
  frame_cache& c = frames_of_this_thread;
  if (!c.exiting) {
    free_frame* batch = std::exchange(c.spare[cls], nullptr);
    if (batch == nullptr) batch = shared_frame_depot.take(cls, frame_depot::slot_of_this_thread());
    if (batch != nullptr) {
      if (!c.opened) open_frame_cache();
      c.heads[cls] = batch->next;
      c.room[cls] = 1;  // depot_batch - 1 frames in use now
      return batch;
    }
  }
  return ::operator new((cls + 1) * frame_granule);
}

[[nodiscard]] inline void* allocate_frame(std::size_t size) {
  if constexpr (DURABLE_DETAIL_ASAN) return ::operator new(size);
  const std::size_t cls = (size - 1) / frame_granule;
  if (cls < frame_classes) {
    frame_cache& c = frames_of_this_thread;
    if (free_frame* f = c.heads[cls]) {
      c.heads[cls] = f->next;
      ++c.room[cls];  // a cached frame means the cache is open and not yet released
      return f;
    }
    return allocate_frame_slowly(cls);
  }
  return ::operator new(size);
}

inline void deallocate_frame(void* p, std::size_t size) noexcept {
  if constexpr (DURABLE_DETAIL_ASAN) {
    ::operator delete(p);
    return;
  }
  const std::size_t cls = (size - 1) / frame_granule;
  if (cls < frame_classes) {
    frame_cache& c = frames_of_this_thread;
    // Decrement first, then test the sign: g++ makes it one read-modify-write and a branch.
    if (--c.room[cls] >= 0 || make_frame_room(cls)) [[likely]] {
      auto* f = static_cast<free_frame*>(p);
      f->next = c.heads[cls];
      c.heads[cls] = f;
      return;
    }
  }
  ::operator delete(p);  // unsized: clang 14 leaves -fsized-deallocation off
}

}  // namespace durable::detail
