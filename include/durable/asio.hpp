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

#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "completion.hpp"
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
        asio::post(on, [alive = std::move(alive)] { alive->signal.emit(asio::cancellation_type::terminal); });
      }
    }
  };

  Executor executor;
  asio::cancellation_signal signal;
  std::optional<std::stop_callback<emit_on_executor>> on_stop;
};

/// The handler durable gives an Asio operation: it completes the task's completer.
template <class Value, class Executor>
class asio_handler {
 public:
  using cancellation_slot_type = asio::cancellation_slot;
  using executor_type = Executor;

  asio_handler(completer<Value> done, std::shared_ptr<asio_cancellation<Executor>> cancel)
      : done_(std::move(done)), cancel_(std::move(cancel)) {}

  [[nodiscard]] cancellation_slot_type get_cancellation_slot() const noexcept { return cancel_->signal.slot(); }
  [[nodiscard]] executor_type get_executor() const noexcept { return cancel_->executor; }

  template <class... Received>
  void operator()(const asio::error_code& code, Received&&... received) {
    cancel_->on_stop.reset();
    if (code) {
      done_.set_exception(asio_exception(code));
    } else if constexpr (std::is_void_v<Value>) {
      done_.set_value();
    } else if constexpr (sizeof...(Received) == 1) {
      done_.set_value(std::forward<Received>(received)...);
    } else {
      done_.set_value(Value(std::forward<Received>(received)...));
    }
  }

 private:
  completer<Value> done_;
  std::shared_ptr<asio_cancellation<Executor>> cancel_;
};

/// Starts an Asio operation with a durable handler, inside the task's `co_await`.
template <class Value, class Initiation, class... InitArgs>
struct asio_start {
  Initiation initiation;
  std::tuple<InitArgs...> args;

  void operator()(completer<Value> done) {
    using executor = std::decay_t<decltype(asio::get_associated_executor(initiation))>;
    auto cancel = std::make_shared<asio_cancellation<executor>>(asio::get_associated_executor(initiation));
    const std::stop_token stop = done.stop_token();
    if (stop.stop_possible())
      cancel->on_stop.emplace(stop, typename asio_cancellation<executor>::emit_on_executor{cancel});
    std::apply(
        [&](auto&&... a) {
          std::move(initiation)(asio_handler<Value, executor>(std::move(done), std::move(cancel)),
                                std::forward<decltype(a)>(a)...);
        },
        std::move(args));
  }
};

}  // namespace detail

}  // namespace durable

template <class... Args>
struct asio::async_result<durable::use_task_t, void(asio::error_code, Args...)> {
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& initiation, durable::use_task_t, InitArgs&&... args) {
    using value = typename durable::detail::asio_value<Args...>::type;
    return durable::completion<value>(durable::detail::asio_start<value, std::decay_t<Initiation>, std::decay_t<InitArgs>...>{
        std::forward<Initiation>(initiation), {std::forward<InitArgs>(args)...}});
  }
};
