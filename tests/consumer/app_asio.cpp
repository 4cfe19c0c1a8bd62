// The Asio component's program of the packaging test: a durable task awaits an asio::post on a
// runtime driven by an io_context.
#include <durable/asio.hpp>
#include <durable/durable.hpp>

#include <asio.hpp>

#include <cstdio>

int main() {
  asio::io_context io;
  durable::asio_driver driver(io);
  durable::runtime rt{driver.options()};
  driver.drive(rt);
  int posts = 0;
  auto task = [&]() -> durable::durable_task<> {
    for (int i = 0; i < 3; ++i) {
      co_await asio::post(io, durable::use_task);
      ++posts;
    }
  };
  rt.spawn(task());
  io.run();
  std::printf("asio: %d posts awaited\n", posts);
  return posts == 3 ? 0 : 1;
}
