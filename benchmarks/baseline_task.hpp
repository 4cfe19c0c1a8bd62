// A minimal hand-written lazy task: the baseline a coroutine library is measured against.
// Lazy start, symmetric transfer, a value slot and a continuation; nothing else. Its frames
// come from the global allocator, or (`task<T, free_list_frames>`) from the smallest per-thread
// free list that recycles them: the floor a recycling frame allocator is measured against.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <utility>

namespace baseline {

/// Frames from the global allocator (the promise declares no operator new).
struct global_frames {};

/// Frames recycled through one per-thread free list per 16-byte size class: no cap, no release
/// at thread exit (what is cached then leaks), no sanitizer support. Only the floor, not a
/// design to copy.
struct free_list_frames {
  struct node {
    node* next;
  };
  static constexpr std::size_t classes = 64;
  static inline thread_local constinit node* heads[classes] = {};
  static void* operator new(std::size_t size) {
    const std::size_t cls = (size - 1) / 16;
    if (cls >= classes) return ::operator new(size);
    if (node* n = heads[cls]) {
      heads[cls] = n->next;
      return n;
    }
    return ::operator new((cls + 1) * 16);
  }
  static void operator delete(void* p, std::size_t size) noexcept {
    const std::size_t cls = (size - 1) / 16;
    if (cls >= classes) return ::operator delete(p);
    heads[cls] = ::new (p) node{heads[cls]};
  }
};

template <class T, class Frames = global_frames>
class task {
 public:
  struct promise_type : Frames {
    T value{};
    std::exception_ptr error;
    std::coroutine_handle<> continuation;

    task get_return_object() noexcept {
      return task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct to_continuation {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          auto c = h.promise().continuation;
          return c ? c : std::noop_coroutine();
        }
        void await_resume() noexcept {}
      };
      return to_continuation{};
    }
    void return_value(T v) noexcept { value = std::move(v); }
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };

  explicit task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  task(task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  task& operator=(task&&) = delete;
  ~task() {
    if (handle_) handle_.destroy();
  }

  auto operator co_await() && noexcept {
    struct awaiter {
      std::coroutine_handle<promise_type> child;
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
        child.promise().continuation = caller;
        return child;
      }
      T await_resume() {
        if (child.promise().error) std::rethrow_exception(child.promise().error);
        return std::move(child.promise().value);
      }
    };
    return awaiter{handle_};
  }

  /// Runs a top-level task to completion (it must not suspend on anything external).
  T run() {
    handle_.resume();
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
    return std::move(handle_.promise().value);
  }

  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }

 private:
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace baseline
