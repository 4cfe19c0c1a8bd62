// Calling a real service: an HTTP/1.1 GET client over Asio sockets, every request a durable
// call. 503 and 429 are `throttled`, retried when their Retry-After says; 404 is `not_found`,
// never retried; a refused connection is a `tcp_error`, retried; a response that stalls is cut
// by `attempt_timeout`; two requests run at once with `gather`.
//
// Run it as `tests/http_test_server.py -- example_http_client`, which starts a server on
// 127.0.0.1 and passes it two ports: one that answers, one that only listens after half a
// second.
#include <durable/asio.hpp>
#include <durable/durable.hpp>

#include <asio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using asio::ip::tcp;

// One GET, connection: close. Statuses the server answers with become durable statuses.
durable::durable_task<std::string> http_get(asio::io_context& io, unsigned short port, std::string path) {
  tcp::socket socket(io);
  co_await socket.async_connect({asio::ip::address_v4::loopback(), port}, durable::use_task);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  co_await asio::async_write(socket, asio::buffer(request), durable::use_task);

  std::string response;
  const std::size_t header_end =
      co_await asio::async_read_until(socket, asio::dynamic_buffer(response), "\r\n\r\n", durable::use_task);
  const std::string headers = response.substr(0, header_end);
  const int code = std::atoi(headers.c_str() + headers.find(' ') + 1);
  const auto header = [&headers](const std::string& name) -> std::string {
    const std::size_t at = headers.find("\r\n" + name + ": ");
    if (at == std::string::npos) return {};
    const std::size_t from = at + name.size() + 4;
    return headers.substr(from, headers.find("\r\n", from) - from);
  };
  const std::size_t length = std::strtoul(header("Content-Length").c_str(), nullptr, 10);
  if (response.size() < header_end + length) {
    co_await asio::async_read(socket, asio::dynamic_buffer(response),
                              asio::transfer_exactly(header_end + length - response.size()), durable::use_task);
  }
  std::string body = response.substr(header_end, length);

  const std::string what = "HTTP " + std::to_string(code) + " for " + path;
  if (code == 503 || code == 429) {
    const auto hint = std::chrono::seconds(std::atoi(header("Retry-After").c_str()));
    throw durable::error(durable::status::throttled, what, hint);
  }
  if (code == 404) throw durable::error(durable::status::not_found, what);
  if (code != 200) throw durable::error(durable::status::http_error, what);
  co_return body;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT LATE_PORT (tests/http_test_server.py runs it so)\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  const auto late_port = static_cast<unsigned short>(std::atoi(argv[2]));

  // Asio's event loop on a thread of its own; durable's work runs on the runtime's worker.
  asio::io_context io;
  auto keep_running = asio::make_work_guard(io);
  std::thread io_thread([&io] { io.run(); });

  durable::runtime rt{{.workers = 1}};
  rt.on_event([](const durable::event& e) {
    if (e.kind == durable::event_kind::attempt_started || e.function_name == "GET (late server)") return;
    const std::string line = durable::format_event(e);
    std::cout << "  " << line.substr(line.find("] ") + 2) << "\n";  // without the real-time clock
  });

  const durable::retry_policy patient{.initial_delay = 100ms,
                                      .jitter = durable::jitter::none,
                                      .max_attempts = 4,
                                      .attempt_timeout = 1s};
  const durable::function get{"GET", [&io](unsigned short p, std::string path) { return http_get(io, p, path); },
                              patient};
  const durable::function get_late{"GET (late server)",
                                   [&io](unsigned short p, std::string path) { return http_get(io, p, path); },
                                   {.initial_delay = 50ms, .jitter = durable::jitter::none}};

  const auto show = [&rt](const char* title, durable::durable_task<std::string> request) {
    std::cout << title << "\n";
    try {
      const std::string body = rt.run(std::move(request));
      std::cout << "  => " << body << "\n";
    } catch (const durable::failure& f) {
      std::cout << "  => failed: " << f.what() << "\n";
    }
  };
  show("GET /flaky (503, then 429, then 200):", get(port, "/flaky"));
  show("GET /missing (404):", get(port, "/missing"));
  show("GET /stall (no answer):", get(port, "/stall"));
  show("GET /late on a server that listens after 0.5 s:", get_late(late_port, "/late"));

  auto both = [&]() -> durable::durable_task<std::string> {
    auto [a, b] = co_await durable::gather(get(port, "/hello"), get(port, "/world"));
    co_return a + " " + b;
  };
  show("GET /hello and GET /world at once:", both());

  keep_running.reset();
  io_thread.join();
}
