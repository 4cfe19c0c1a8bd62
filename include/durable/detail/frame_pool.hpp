// durable/detail/frame_pool.hpp — per-thread recycling of coroutine frames.
//
// g++ 12 never elides a frame allocation and clang's elision is unreliable, so every task
// costs a malloc and a free (~20 ns, about as much as the rest of a create+await). Frames come
// in few sizes, so a thread-local free list per 16-byte size class makes them nearly free, the
// way Asio and Boost.Cobalt recycle theirs. A frame freed on another thread simply joins that
// thread's lists. Under AddressSanitizer frames go to the global allocator instead, so that a
// use of a freed frame is still reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

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
inline constexpr std::int32_t frames_kept_per_class = 256;

struct free_frame {
  free_frame* next;
};

// Trivially constructible and destructible, so reading it needs no thread_local init guard;
// the lists are released at thread exit by `frame_cache_release` below.
struct frame_cache {
  free_frame* heads[frame_classes];
  /// How many more frames each class may keep. Zero until this thread's first free opens the
  /// cache (registering the release at thread exit), and zero again from thread exit on: so the
  /// cap, the registration and the thread-exit check are one test of one counter per free, and
  /// only a full class (or those two moments) takes the slow path.
  /// Signed: a free decrements it first and tests the sign (see deallocate_frame).
  std::int32_t room[frame_classes];
  /// The cache was opened: a free that finds no room from then on goes to the global allocator.
  bool opened;
};
inline thread_local constinit frame_cache frames_of_this_thread{};

struct frame_cache_release {
  ~frame_cache_release() {
    frame_cache& c = frames_of_this_thread;
    for (std::size_t i = 0; i < frame_classes; ++i) {
      c.room[i] = 0;  // frames freed later in this thread's exit go straight back
      while (free_frame* f = c.heads[i]) {
        c.heads[i] = f->next;
        ::operator delete(static_cast<void*>(f));
      }
    }
  }
};

/// A free found no room in class `cls` (and took one anyway: its room is -1). True if
/// there is room now: this thread's first free registers the release at thread exit and opens
/// every class. False if the class is full or the thread is exiting: the room is 0 again. Out
/// of line and noexcept, so that the inline free path stays a decrement, a branch and a push
/// in every frame's teardown, with nothing for the unwinder to see.
[[gnu::noinline, gnu::cold]] inline bool open_frame_cache(std::size_t cls) noexcept {
  frame_cache& c = frames_of_this_thread;
  if (c.opened) {
    c.room[cls] = 0;
    return false;
  }
  static thread_local frame_cache_release release;  // glibc aborts rather than throw here
  static_cast<void>(release);
  c.opened = true;
  for (std::int32_t& r : c.room) r = frames_kept_per_class;
  --c.room[cls];  // the frame being freed
  return true;
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
    return ::operator new((cls + 1) * frame_granule);
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
    if (--c.room[cls] >= 0 || open_frame_cache(cls)) [[likely]] {
      auto* f = static_cast<free_frame*>(p);
      f->next = c.heads[cls];
      c.heads[cls] = f;
      return;
    }
  }
  ::operator delete(p);  // unsized: clang 14 leaves -fsized-deallocation off
}

}  // namespace durable::detail
