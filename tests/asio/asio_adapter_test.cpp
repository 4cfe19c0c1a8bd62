// durable/asio.hpp over real sockets on 127.0.0.1: results, error mapping, resumption on the
// runtime, cancellation by a stop request and by attempt_timeout. Each test runs its own
// io_context on a thread of its own and stops it at the end; nothing waits without a bound.
#include <catch2/catch.hpp>

#include <durable/asio.hpp>
#include <durable/durable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;
using durable::durable_task;
using durable::status;

namespace {

/// An io_context run by a thread of its own for the test's lifetime.
class io_thread {
 public:
  io_thread() : work_(asio::make_work_guard(io)), thread_([this] { io.run(); }) {}
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;
  ~io_thread() {
    work_.reset();
    io.stop();
    thread_.join();
  }
  [[nodiscard]] std::thread::id id() const { return thread_.get_id(); }

  asio::io_context io;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

const asio::ip::address loopback = asio::ip::address_v4::loopback();

/// A listener on a free loopback port that does `serve` with each connection it accepts.
class server {
 public:
  template <class Serve>
  server(asio::io_context& io, Serve serve) : acceptor_(io, {loopback, 0}) {
    accept(std::move(serve));
  }
  [[nodiscard]] tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

 private:
  template <class Serve>
  void accept(Serve serve) {
    acceptor_.async_accept([this, serve](asio::error_code ec, tcp::socket socket) {
      if (ec) return;
      serve(std::make_shared<tcp::socket>(std::move(socket)));
      accept(serve);
    });
  }
  tcp::acceptor acceptor_;
};

/// A loopback port nothing listens on (bound, then closed).
unsigned short closed_port(asio::io_context& io) {
  tcp::acceptor probe(io, {loopback, 0});
  const unsigned short port = probe.local_endpoint().port();
  probe.close();
  return port;
}

/// Counts, from any thread, attempts that failed by their attempt_timeout.
struct test_events {
  std::atomic<int> timeouts{0};
  explicit test_events(durable::runtime& rt) {
    rt.on_event([this](const durable::event& e) {
      if (e.kind == durable::event_kind::attempt_failed && e.reason == durable::failure_reason::attempt_timeout)
        timeouts.fetch_add(1);
    });
  }
};

/// The status a failure of `task` had, through a durable::function that tries once.
template <class Body>
status status_of_one_attempt(durable::runtime& rt, Body body) {
  const durable::function once{"once", body, {.max_attempts = 1}};
  try {
    static_cast<void>(rt.run(once()));
  } catch (const durable::failure& f) {
    return f.code();
  }
  return status::ok;
}

}  // namespace

TEST_CASE("an awaited Asio operation returns its value and resumes on the runtime, not the io thread",
          "[asio]") {
  io_thread io;
  server hello(io.io, [](std::shared_ptr<tcp::socket> s) {
    asio::async_write(*s, asio::buffer(std::string("hello")), [s](asio::error_code, std::size_t) {});
  });
  durable::runtime rt{{.workers = 1}};
  std::thread::id resumed_on;
  auto task = [&]() -> durable_task<std::string> {
    tcp::socket socket(io.io);
    co_await socket.async_connect(hello.endpoint(), durable::use_task);
    char buf[16];
    const std::size_t n = co_await asio::async_read(socket, asio::buffer(buf, 5), durable::use_task);
    resumed_on = std::this_thread::get_id();
    co_return std::string(buf, n);
  };
  CHECK(rt.run(task()) == "hello");
  CHECK(resumed_on != io.id());
}

TEST_CASE("a refused connection is a tcp_error, and is retried", "[asio]") {
  io_thread io;
  durable::runtime rt{{.workers = 1}};
  const tcp::endpoint nobody{loopback, closed_port(io.io)};
  CHECK(status_of_one_attempt(rt, [&]() -> durable_task<int> {
          tcp::socket socket(io.io);
          co_await socket.async_connect(nobody, durable::use_task);
          co_return 0;
        }) == status::tcp_error);
  CHECK(durable::is_retryable(status::tcp_error));
}

TEST_CASE("the peer closing the connection (end of file) is a tcp_error", "[asio]") {
  io_thread io;
  server closes(io.io, [](std::shared_ptr<tcp::socket> s) { s->close(); });
  durable::runtime rt{{.workers = 1}};
  CHECK(status_of_one_attempt(rt, [&]() -> durable_task<int> {
          tcp::socket socket(io.io);
          co_await socket.async_connect(closes.endpoint(), durable::use_task);
          char buf[4];
          co_await socket.async_read_some(asio::buffer(buf), durable::use_task);
          co_return 0;
        }) == status::tcp_error);
}

TEST_CASE("a host that is not found is a dns_error", "[asio]") {
  io_thread io;
  durable::runtime rt{{.workers = 1}};
  // numeric_host: the resolver answers without asking the network (which the tests may lack).
  CHECK(status_of_one_attempt(rt, [&]() -> durable_task<int> {
          tcp::resolver resolver(io.io);
          co_await resolver.async_resolve("no-such-host.invalid", "80", tcp::resolver::numeric_host, durable::use_task);
          co_return 0;
        }) == status::dns_error);
}

TEST_CASE("Asio's timed out code is a timeout and its resolver codes are dns_errors", "[asio]") {
  const auto classified = [](const asio::error_code& code) {
    try {
      std::rethrow_exception(durable::asio_exception(code));
    } catch (const durable::error& e) {
      return e.code();
    } catch (const std::system_error& e) {
      return durable::classify_system_error(e);
    }
  };
  CHECK(classified(asio::error::timed_out) == status::timeout);
  CHECK(classified(asio::error::connection_reset) == status::tcp_error);
  CHECK(classified(asio::error::host_not_found_try_again) == status::dns_error);
  CHECK(classified(asio::error::service_not_found) == status::dns_error);
  CHECK(classified(asio::error::eof) == status::tcp_error);
}

TEST_CASE("a stop request cancels an Asio read in flight at once", "[asio]") {
  asio::io_context io;  // run below, without a work guard: it returns once no operation is left
  std::promise<void> accepted;
  std::shared_ptr<tcp::socket> held;  // never writes
  server silent(io, [&](std::shared_ptr<tcp::socket> s) {
    held = std::move(s);
    accepted.set_value();
  });
  durable::runtime rt{{.workers = 1}};
  std::stop_source stop;
  std::thread stopper([&] {
    accepted.get_future().wait();
    stop.request_stop();
  });
  std::thread io_runner([&] {
    io.run_for(30s);  // bound: a read left pending would keep it running
  });
  auto task = [&]() -> durable_task<std::size_t> {
    tcp::socket socket(io);
    co_await socket.async_connect(silent.endpoint(), durable::use_task);
    char buf[4];
    co_return co_await socket.async_read_some(asio::buffer(buf), durable::use_task);
  };
  try {
    static_cast<void>(rt.run(task(), stop.get_token()));
    FAIL("the read returned");
  } catch (const durable::failure& f) {
    CHECK(f.reason() == durable::failure_reason::cancelled);
  }
  stopper.join();
  held.reset();
  asio::post(io, [&] { io.stop(); });  // the acceptor's accept is still pending by design
  io_runner.join();
}

TEST_CASE("attempt_timeout cuts a stalled Asio read and the call retries", "[asio]") {
  io_thread io;
  std::vector<std::shared_ptr<tcp::socket>> held;
  int connections = 0;
  // The first connection stalls; the second answers.
  server stalls_once(io.io, [&](std::shared_ptr<tcp::socket> s) {
    if (++connections == 1) {
      held.push_back(std::move(s));
    } else {
      asio::async_write(*s, asio::buffer(std::string("ok")), [s](asio::error_code, std::size_t) {});
    }
  });
  durable::runtime rt{{.workers = 1}};
  test_events events(rt);
  const durable::function fetch{"fetch",
                                [&]() -> durable_task<std::string> {
                                  tcp::socket socket(io.io);
                                  co_await socket.async_connect(stalls_once.endpoint(), durable::use_task);
                                  char buf[2];
                                  const std::size_t n =
                                      co_await asio::async_read(socket, asio::buffer(buf), durable::use_task);
                                  co_return std::string(buf, n);
                                },
                                {.initial_delay = std::chrono::milliseconds(1),
                                 .max_attempts = 5,
                                 .attempt_timeout = std::chrono::milliseconds(300)}};
  CHECK(rt.run(fetch()) == "ok");
  CHECK(events.timeouts.load() >= 1);  // the stalled first one (a slow sanitizer build may add more)
}
