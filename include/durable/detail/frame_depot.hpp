// durable/detail/frame_depot.hpp — where frames freed on one thread wait for another thread to
// reuse them.
//
// Each thread keeps its own free lists (frame_pool.hpp), and a frame freed on another thread
// joins that thread's lists. When one thread creates the tasks and others finish them (a
// producer spawning onto workers, a worker whose work is stolen), the creating thread finds its
// lists always empty and the finishing threads' always full: every frame would cost a malloc
// on one side and a free on the other, both contending for the allocator's arena lock. So a
// full list hands half of itself to a shared depot, in one batch under one short lock, and an
// empty list takes a batch back: one lock per hundred-odd frames instead of two allocator calls
// per frame. The depot keeps a bounded number of batches per size class (past that, frames go
// back to the allocator). The depot itself lives as long as the process; the frames it keeps
// go back to the allocator when the last runtime ends (`depot_tenancy` below).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <utility>

#include "spin_lock.hpp"

namespace durable::detail {

/// A free frame, linked into a list through its first word; the first frame of a batch in the
/// depot also links the next batch.
struct free_frame {
  free_frame* next;
  free_frame* next_batch;  // frames are at least 16 bytes: a second word is always there
};

// Frees a chain of frames linked through `next`.
inline void free_chain(free_frame* f) noexcept {
  while (f != nullptr) ::operator delete(static_cast<void*>(std::exchange(f, f->next)));
}

inline constexpr std::size_t depot_classes = 64;
/// Frames per batch: half of what a thread's list keeps of one class.
inline constexpr std::uint32_t depot_batch = 128;
/// Bytes of free frames the depot keeps per size class, at most (and at least two batches).
inline constexpr std::size_t depot_bytes_per_class = 8 * 1024 * 1024;

/// Stacks of batches per class, one per slot: a thread gives to its own slot's and takes from
/// it first, so that the batches a thread set aside while it ran a burst of work come back to
/// it, still in its core's cache, rather than to a thread on another core (spawn/ on two
/// workers ran 1.5x faster than with one stack, where a worker that freed a few thousand
/// frames at once handed them to the other one). Threads share slots past this many.
inline constexpr std::uint32_t depot_slots = 8;

class frame_depot {
 public:
  /// Keeps `batch` (`depot_batch` frames of `frame_size` bytes, in class `cls`) in `slot`'s
  /// stack if there is room; false if not (the caller frees them).
  bool give(std::size_t cls, free_frame* batch, std::size_t frame_size, std::uint32_t slot) noexcept {
    const std::size_t fits = depot_bytes_per_class / (depot_batch * frame_size);
    per_class& c = classes_[cls];
    std::lock_guard lock(c.lock);
    if (c.batches >= (fits < 2 ? 2 : fits)) return false;
    batch->next_batch = c.top[slot];
    c.top[slot] = batch;
    ++c.batches;
    return true;
  }

  /// A batch of class `cls` (`depot_batch` frames linked through `next`): the newest of
  /// `slot`'s stack, else the newest of the next slot that has one; null if the depot has none.
  free_frame* take(std::size_t cls, std::uint32_t slot) noexcept {
    per_class& c = classes_[cls];
    std::lock_guard lock(c.lock);
    if (c.batches == 0) return nullptr;
    for (std::uint32_t k = 0; k < depot_slots; ++k) {
      free_frame*& top = c.top[(slot + k) % depot_slots];
      if (top == nullptr) continue;
      free_frame* batch = top;
      top = batch->next_batch;
      --c.batches;
      return batch;
    }
    return nullptr;  // not reached: `batches` counts the batches of every stack
  }

  /// Gives every frame it keeps back to the allocator.
  void release_all() noexcept {
    for (per_class& c : classes_) {
      free_frame* stacks[depot_slots];
      {
        std::lock_guard lock(c.lock);
        for (std::uint32_t k = 0; k < depot_slots; ++k) stacks[k] = std::exchange(c.top[k], nullptr);
        c.batches = 0;
      }
      for (free_frame* batch : stacks) {
        while (batch != nullptr) free_chain(std::exchange(batch, batch->next_batch));
      }
    }
  }

  /// The slot for the calling thread's gives and takes (assigned round robin at its first).
  [[nodiscard]] static std::uint32_t slot_of_this_thread() noexcept {
    static constinit std::atomic<std::uint32_t> next_slot{0};
    thread_local const std::uint32_t slot = next_slot.fetch_add(1, std::memory_order_relaxed) % depot_slots;
    return slot;
  }

 private:
  struct per_class {
    spin_lock lock;
    std::size_t batches = 0;  // in all the stacks
    free_frame* top[depot_slots] = {};
  };
  per_class classes_[depot_classes];
};

/// The process's depot: constant-initialised and trivially destructible, so a thread that
/// frees frames while the program exits still finds it.
inline constinit frame_depot shared_frame_depot{};

/// Held by every runtime while it lives: when the last one ends, the depot's frames go back to
/// the allocator. Frames kept past the work that freed them are cold and scattered over
/// whatever that work's peak spanned; a later runtime that recycled them would touch far more
/// pages than fresh ones in allocation order (spawn/ on one worker ran at half speed after
/// delayed/ had filled the depot: BENCHMARKS.md, DESIGN.md "Frames").
class depot_tenancy {
 public:
  depot_tenancy() noexcept { tenants().fetch_add(1, std::memory_order_relaxed); }
  ~depot_tenancy() {
    // acq_rel: the last tenant sees every batch the others gave before they left.
    if (tenants().fetch_sub(1, std::memory_order_acq_rel) == 1) shared_frame_depot.release_all();
  }
  depot_tenancy(const depot_tenancy&) = delete;
  depot_tenancy& operator=(const depot_tenancy&) = delete;

 private:
  static std::atomic<std::size_t>& tenants() noexcept {
    static constinit std::atomic<std::size_t> count{0};
    return count;
  }
};

}  // namespace durable::detail
