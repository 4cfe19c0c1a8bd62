// durable/detail/frame_pool.hpp — per-thread recycling of coroutine frames.
//
// g++ 12 never elides a frame allocation and clang's elision is unreliable, so every task
// costs a malloc and a free (~20 ns, about as much as the rest of a create+await). Frames come
// in few sizes, so a thread-local free list per 16-byte size class makes them nearly free, the
// way Asio and Boost.Cobalt recycle theirs. A frame freed on another thread joins that
// thread's lists; lists that fill up and lists that run dry trade batches through a shared
// depot (frame_depot.hpp), so that work created on one thread and finished on another does
// not fall back on the allocator. Under AddressSanitizer frames go to the global allocator instead, so that a
// use of a freed frame is still reported.
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
inline constexpr std::uint32_t frames_kept_per_class = 2 * depot_batch;
static_assert(frame_classes <= depot_classes);

// Trivially constructible and destructible, so reading it needs no thread_local init guard;
// the lists are released at thread exit by `frame_cache_release` below.
struct frame_cache {
  free_frame* heads[frame_classes];
  std::uint32_t counts[frame_classes];
  bool release_registered;
  bool thread_exiting;
};
inline thread_local constinit frame_cache frames_of_this_thread{};

struct frame_cache_release {
  ~frame_cache_release() {
    frame_cache& c = frames_of_this_thread;
    c.thread_exiting = true;  // frames freed later in this thread's exit go straight back
    for (std::size_t i = 0; i < frame_classes; ++i) {
      while (free_frame* f = c.heads[i]) {
        c.heads[i] = f->next;
        ::operator delete(static_cast<void*>(f));
      }
      c.counts[i] = 0;
    }
  }
};

[[gnu::noinline]] inline void register_frame_cache_release() {
  static thread_local frame_cache_release release;
  static_cast<void>(release);
  frames_of_this_thread.release_registered = true;
}

// This thread's list of class `cls` is empty: a batch from the depot, or the allocator.
[[gnu::noinline]] inline void* allocate_frame_slowly(std::size_t cls) {
  frame_cache& c = frames_of_this_thread;
  if (!c.thread_exiting) {
    if (free_frame* batch = shared_frame_depot.take(cls)) {
      if (!c.release_registered) register_frame_cache_release();
      c.heads[cls] = batch->next;
      c.counts[cls] = depot_batch - 1;
      return batch;
    }
  }
  return ::operator new((cls + 1) * frame_granule);
}

// This thread's list of class `cls` is full: its newest half goes to the depot (or, if the
// depot has no room, back to the allocator).
[[gnu::noinline]] inline void hand_frames_to_depot(std::size_t cls) noexcept {
  frame_cache& c = frames_of_this_thread;
  free_frame* batch = c.heads[cls];
  free_frame* last = batch;
  for (std::uint32_t i = 1; i < depot_batch; ++i) last = last->next;
  c.heads[cls] = last->next;
  c.counts[cls] -= depot_batch;
  last->next = nullptr;
  if (shared_frame_depot.give(cls, batch, (cls + 1) * frame_granule)) return;
  while (batch != nullptr) ::operator delete(static_cast<void*>(std::exchange(batch, batch->next)));
}

[[nodiscard]] inline void* allocate_frame(std::size_t size) {
  if constexpr (DURABLE_DETAIL_ASAN) return ::operator new(size);
  const std::size_t cls = (size - 1) / frame_granule;
  if (cls < frame_classes) {
    frame_cache& c = frames_of_this_thread;
    if (free_frame* f = c.heads[cls]) {
      c.heads[cls] = f->next;
      --c.counts[cls];
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
  frame_cache& c = frames_of_this_thread;
  if (cls < frame_classes && !c.thread_exiting) {
    if (!c.release_registered) register_frame_cache_release();
    if (c.counts[cls] == frames_kept_per_class) [[unlikely]] hand_frames_to_depot(cls);
    auto* f = static_cast<free_frame*>(p);
    f->next = c.heads[cls];
    c.heads[cls] = f;
    ++c.counts[cls];
    return;
  }
  ::operator delete(p);  // unsized: clang 14 leaves -fsized-deallocation off
}

}  // namespace durable::detail
