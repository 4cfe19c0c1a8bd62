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

inline constexpr std::size_t depot_classes = 64;
/// Frames per batch: half of what a thread's list keeps of one class.
inline constexpr std::uint32_t depot_batch = 128;
/// Bytes of free frames the depot keeps per size class, at most (and at least two batches).
inline constexpr std::size_t depot_bytes_per_class = 8 * 1024 * 1024;

class frame_depot {
 public:
  /// Keeps `batch` (`depot_batch` frames of `frame_size` bytes, in class `cls`) if there is
  /// room; false if not (the caller frees them).
  bool give(std::size_t cls, free_frame* batch, std::size_t frame_size) noexcept {
    const std::size_t fits = depot_bytes_per_class / (depot_batch * frame_size);
    per_class& c = classes_[cls];
    std::lock_guard lock(c.lock);
    if (c.batches >= (fits < 2 ? 2 : fits)) return false;
    batch->next_batch = c.top;
    c.top = batch;
    ++c.batches;
    return true;
  }

  /// A batch of class `cls` (`depot_batch` frames linked through `next`), or null if the depot
  /// has none.
  free_frame* take(std::size_t cls) noexcept {
    per_class& c = classes_[cls];
    std::lock_guard lock(c.lock);
    free_frame* batch = c.top;
    if (batch != nullptr) {
      c.top = batch->next_batch;
      --c.batches;
    }
    return batch;
  }

  /// Gives every frame it keeps back to the allocator.
  void release_all() noexcept {
    for (per_class& c : classes_) {
      free_frame* batch = nullptr;
      {
        std::lock_guard lock(c.lock);
        batch = std::exchange(c.top, nullptr);
        c.batches = 0;
      }
      while (batch != nullptr) {
        free_frame* frame = std::exchange(batch, batch->next_batch);
        while (frame != nullptr) ::operator delete(static_cast<void*>(std::exchange(frame, frame->next)));
      }
    }
  }

 private:
  struct per_class {
    spin_lock lock;
    free_frame* top = nullptr;
    std::size_t batches = 0;
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
