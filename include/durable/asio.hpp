// durable/asio.hpp — awaiting Asio operations in durable tasks (optional: needs standalone Asio,
// Debian's libasio-dev; tested with Asio 1.22). Link the CMake target durable::asio.
//
//   std::size_t n = co_await socket.async_read_some(asio::buffer(buf), durable::use_task);
//
// `durable::use_task` is a completion token, in the style of `asio::use_awaitable`, for any
// Asio asynchronous operation awaited in a durable_task:
//  - the task resumes on its durable runtime, not on the thread that runs the io_context;
//  - a stop request or an `attempt_timeout` cancels the operation through its cancellation slot
//    (a terminal cancellation, emitted on the operation's own executor, which is where Asio
//    wants it); the task waits for the cancelled operation to complete (it may be writing into
//    the task's buffers until then) and ends with a cancellation;
//  - an error code becomes an exception the error table classifies: host not found and other
//    resolver errors are `status::dns_error`, end of file (the peer closed the connection) is
//    `status::tcp_error`, and any other code is a `std::system_error` (connection refused or
//    reset: `tcp_error`; timed out: `timeout`; see `classify_error_code`).
// The value of `co_await` is what the handler receives after its error code: nothing (void),
// one value, or a std::tuple of them.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "clock.hpp"
#include "completion.hpp"
#include "runtime.hpp"
#include "error.hpp"
#include "status.hpp"

namespace durable {

/// The type of `use_task`.
struct use_task_t {
  constexpr use_task_t() noexcept = default;
};

/// The completion token that makes an Asio operation awaitable in a durable_task.
inline constexpr use_task_t use_task{};

/// The exception an Asio error code stands for, classified as the top of this file says.
[[nodiscard]] inline std::exception_ptr asio_exception(const asio::error_code& code, const std::string& what = {}) {
  const std::string message = what.empty() ? code.message() : what + ": " + code.message();
  if (code.category() == asio::error::get_netdb_category() || code.category() == asio::error::get_addrinfo_category())
    return std::make_exception_ptr(error(status::dns_error, message));
  if (code == asio::error::eof) {
    return std::make_exception_ptr(
        error(status::tcp_error, (what.empty() ? std::string() : what + ": ") + "the peer closed the connection (end of file)"));
  }
  // Asio's own system category (1.22 standalone) holds errno values but maps them to no generic
  // condition, so the error table could not tell ECONNREFUSED from any other code: the same
  // value goes out in the standard library's system category.
  if (code.category() == asio::system_category())
    return std::make_exception_ptr(std::system_error(std::error_code(code.value(), std::system_category()), what));
  return std::make_exception_ptr(std::system_error(code, what));
}

namespace detail {

/// What `co_await` of an operation with handler signature void(error_code, Args...) returns.
template <class... Args>
struct asio_value {
  using type = std::tuple<std::decay_t<Args>...>;
};
template <>
struct asio_value<> {
  using type = void;
};
template <class Arg>
struct asio_value<Arg> {
  using type = std::decay_t<Arg>;
};

/// The cancellation side of one operation: the signal its handler's slot is bound to, and the
/// stop callback that emits it on the operation's executor.
template <class Executor>
struct asio_cancellation : std::enable_shared_from_this<asio_cancellation<Executor>> {
  explicit asio_cancellation(Executor ex) : executor(std::move(ex)) {}

  struct emit_on_executor {
    std::weak_ptr<asio_cancellation> self;
    void operator()() const {
      if (auto alive = self.lock()) {
        auto on = alive->executor;
        asio::post(on, [alive = std::move(alive)] {
          std::lock_guard lock(alive->mutex);
          alive->signal.emit(asio::cancellation_type::terminal);
        });
      }
    }
  };

  /// The operation completed (on its executor, where an emit would run too): no emit may reach
  /// the handler it installed in the slot, which may point into a socket that is about to go.
  void done() {
    on_stop.reset();
    std::lock_guard lock(mutex);
    signal.slot().clear();
  }

  Executor executor;
  /// Held while the initiation connects the slot, and around every emit and clear: a stop
  /// arriving during the initiation waits for the slot instead of finding it half-made (or
  /// empty, losing the cancellation). Recursive: an operation may complete inside its own
  /// initiation, on the same thread.
  std::recursive_mutex mutex;
  asio::cancellation_signal signal;
  std::optional<std::stop_callback<emit_on_executor>> on_stop;
};

/// The driver's side of a handler completing a wait on one of its io threads (asio_driver).
class asio_poller {
 public:
  /// True if this thread runs the driver's io_context now.
  [[nodiscard]] virtual bool runs_in_this_thread() const noexcept = 0;
  /// Runs `complete(arg)` and then the runtime's work (`runtime::poll_after`).
  virtual void poll_after(void (*complete)(void*), void* arg) = 0;

 protected:
  ~asio_poller() = default;
};

/// The driver whose poll is running on this thread, if any: an operation a task starts there
/// gets a handler that, completing on the same io_context, resumes the task in place.
struct asio_polling {
  asio_poller* driver = nullptr;
  bool more_work = false;  // work_available was called meanwhile: poll again afterwards
};
inline thread_local asio_polling current_asio_polling;

/// The handler durable gives an Asio operation: it completes the task's completer. `WithCode`:
/// the handler's first argument is an error code.
template <class Value, class Executor, bool WithCode>
class asio_handler {
 public:
  using cancellation_slot_type = asio::cancellation_slot;
  // No associated executor of its own: the handler runs where the operation runs an unadorned
  // handler (the I/O object's executor, the one given to asio::post), which is also the one
  // `cancel` emits on; declaring that same executor would only make Asio wrap every completion
  // in a work-tracking dispatcher.

  /// `cancel` is null when nothing can stop the task (then no slot is offered); `driver` is the
  /// driver that polled the task when it started the operation, if any.
  asio_handler(completer<Value> done, std::shared_ptr<asio_cancellation<Executor>> cancel, asio_poller* driver)
      : done_(std::move(done)), cancel_(std::move(cancel)), driver_(driver) {}

  [[nodiscard]] cancellation_slot_type get_cancellation_slot() const noexcept {
    return cancel_ ? cancel_->signal.slot() : cancellation_slot_type();
  }

  template <class... Received>
  void operator()(const asio::error_code& code, Received&&... received)
    requires WithCode
  {
    if (cancel_) cancel_->done();
    complete([&] {
      if (code) {
        done_.set_exception(asio_exception(code));
      } else {
        deliver(std::forward<Received>(received)...);
      }
    });
  }
  template <class... Received>
  void operator()(Received&&... received)
    requires(!WithCode)
  {
    if (cancel_) cancel_->done();
    complete([&] { deliver(std::forward<Received>(received)...); });
  }

 private:
  // On an io thread of the driver that ran the task, the task resumes inside this handler;
  // anywhere else, through its runtime's queue.
  template <class Deliver>
  void complete(Deliver deliver) {
    if (driver_ != nullptr && driver_->runs_in_this_thread()) {
      driver_->poll_after([](void* d) { (*static_cast<Deliver*>(d))(); }, &deliver);
    } else {
      deliver();
    }
  }

  template <class... Received>
  void deliver(Received&&... received) {
    if constexpr (std::is_void_v<Value>) {
      done_.set_value();
    } else if constexpr (sizeof...(Received) == 1) {
      done_.set_value(std::forward<Received>(received)...);
    } else {
      done_.set_value(Value(std::forward<Received>(received)...));
    }
  }

  completer<Value> done_;
  std::shared_ptr<asio_cancellation<Executor>> cancel_;
  asio_poller* driver_;
};

/// Starts an Asio operation with a durable handler, inside the task's `co_await`.
template <class Value, bool WithCode, class Initiation, class... InitArgs>
struct asio_start {
  Initiation initiation;
  std::tuple<InitArgs...> args;

  void operator()(completer<Value> done) {
    using executor = std::decay_t<decltype(asio::get_associated_executor(initiation))>;
    std::shared_ptr<asio_cancellation<executor>> cancel;
    std::unique_lock<std::recursive_mutex> connecting;
    if (const std::stop_token stop = done.stop_token(); stop.stop_possible()) {
      cancel = std::make_shared<asio_cancellation<executor>>(asio::get_associated_executor(initiation));
      connecting = std::unique_lock(cancel->mutex);
      cancel->on_stop.emplace(stop, typename asio_cancellation<executor>::emit_on_executor{cancel});
    }
    std::apply(
        [&](auto&&... a) {
          // `cancel` copied: it (and the mutex `connecting` holds) outlives a handler run inline.
          std::move(initiation)(asio_handler<Value, executor, WithCode>(std::move(done), cancel,
                                                                        current_asio_polling.driver),
                                std::forward<decltype(a)>(a)...);
        },
        std::move(args));
  }
};

}  // namespace detail

/// Runs a durable runtime's work on an Asio io_context, so that a program has one event loop:
///
///   asio::io_context io;
///   durable::asio_driver driver(io);
///   durable::runtime rt{driver.options()};
///   driver.drive(rt);
///   rt.spawn(fetch_all());   // durable tasks now run on the threads that run io
///   io.run();
///
/// Work the runtime gains (from any thread) is polled on the io_context, and the runtime's
/// next timer is an Asio timer (made on first use). An Asio operation awaited with `use_task`
/// that completes on this io_context resumes its task inside the same handler. `io.run()`
/// returns when Asio has nothing left, as ever: a durable task waiting on something that is
/// not an Asio operation or a durable timer needs a work guard. Destroy the runtime, then the
/// driver, once `io.run()` has returned or the io_context is stopped. Call `rt.run` from a
/// thread that does not run `io`.
class asio_driver final : private detail::asio_poller {
 public:
  explicit asio_driver(asio::io_context& io) : io_(io) {}
  asio_driver(const asio_driver&) = delete;
  asio_driver& operator=(const asio_driver&) = delete;

  /// `base` for a runtime driven by this driver (workers 0, work_available set).
  [[nodiscard]] runtime_options options(runtime_options base = {}) {
    base.workers = 0;
    base.work_available = [this] { schedule(); };
    return base;
  }

  /// Starts driving `rt`, made with `options()`.
  void drive(runtime& rt) {
    rt_.store(&rt, std::memory_order_release);
    schedule();
  }

 private:
  void schedule() noexcept {
    if (rt_.load(std::memory_order_acquire) == nullptr) return;  // drive() schedules
    if (detail::current_asio_polling.driver == this) {
      detail::current_asio_polling.more_work = true;  // the poll running here schedules as it ends
      return;
    }
    if (scheduled_.exchange(true, std::memory_order_acq_rel)) return;
    asio::post(io_, [this] {
      scheduled_.store(false, std::memory_order_release);  // work arriving from now on polls again
      polling([this] { return rt_.load(std::memory_order_acquire)->poll(); });
    });
  }

  [[nodiscard]] bool runs_in_this_thread() const noexcept override {
    return io_.get_executor().running_in_this_thread();
  }

  void poll_after(void (*complete)(void*), void* arg) override {
    polling([&] { return rt_.load(std::memory_order_acquire)->poll_after([&] { complete(arg); }); });
  }

  // Runs `poll` (the runtime's poll) as this thread's polling driver, then arms the timer it
  // asks for and schedules the work it left.
  // An exception (a handler's completion that could not be made) goes on to `io.run()`, as a
  // handler's exception does in Asio.
  template <class Poll>
  void polling(Poll poll) {
    bool more_work = false;
    std::optional<time_point> next;
    {
      struct scope {
        detail::asio_polling outer;
        bool& more_work;
        ~scope() { more_work = std::exchange(detail::current_asio_polling, outer).more_work; }
      } as_driver{std::exchange(detail::current_asio_polling, {this, false}), more_work};
      next = poll();
    }
    if (next) arm_timer(*next);
    if (more_work) schedule();
  }

  void arm_timer(time_point when) {
    const auto at = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(when.time_since_epoch()));
    std::lock_guard lock(timer_mutex_);  // polls may run on several io threads at once
    if (!timer_) timer_.emplace(io_);
    if (armed_for_ && *armed_for_ <= at && timer_->expiry() > std::chrono::system_clock::now()) return;
    armed_for_ = at;
    timer_->expires_at(at);
    timer_->async_wait([this](const asio::error_code& cancelled) {
      if (cancelled) return;
      {
        std::lock_guard relock(timer_mutex_);
        armed_for_.reset();
      }
      schedule();
    });
  }

  asio::io_context& io_;
  std::atomic<runtime*> rt_{nullptr};
  std::atomic<bool> scheduled_{false};
  std::mutex timer_mutex_;
  std::optional<asio::system_timer> timer_;                   // under timer_mutex_
  std::optional<std::chrono::system_clock::time_point> armed_for_;  // under timer_mutex_
};

}  // namespace durable

namespace durable::detail {
/// `async_result::initiate` for use_task: a completion whose initiation starts the operation.
template <bool WithCode, class... Args>
struct use_task_result {
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& initiation, use_task_t, InitArgs&&... args) {
    using value = typename asio_value<Args...>::type;
    return completion<value>(asio_start<value, WithCode, std::decay_t<Initiation>, std::decay_t<InitArgs>...>{
        std::forward<Initiation>(initiation), {std::forward<InitArgs>(args)...}});
  }
};
}  // namespace durable::detail

// Operations whose handler takes an error code first (most), and those whose handler takes no
// error code (asio::post, asio::dispatch, asio::defer).
template <class... Args>
struct asio::async_result<durable::use_task_t, void(asio::error_code, Args...)>
    : durable::detail::use_task_result<true, Args...> {};
template <class... Args>
struct asio::async_result<durable::use_task_t, void(Args...)> : durable::detail::use_task_result<false, Args...> {};
