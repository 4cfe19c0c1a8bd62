// An Asio operation that completes at once (a posted completion), awaited 1,000 times in a row
// on one io_context thread:
//   asio_post_await/baseline:use_awaitable   an asio::awaitable coroutine, asio::use_awaitable
//   asio_post_await/durable:use_task         a durable_task on a runtime driven by the same
//                                            io_context (durable::asio_driver), durable::use_task
// Each iteration runs the io_context until the coroutine has finished; the time is per await.
#include <benchmark/benchmark.h>

#include <durable/asio.hpp>
#include <durable/durable.hpp>

#include <asio.hpp>

#include <cstdio>

// The baseline needs Asio's own C++20 coroutines, which Asio 1.22 enables for g++ but not for
// clang 14 with libstdc++: there the binary only says so.
#if defined(ASIO_HAS_CO_AWAIT)

namespace {

constexpr int awaits = 1000;

asio::awaitable<void> posts_awaitable(asio::io_context& io, int n) {
  for (int i = 0; i < n; ++i) co_await asio::post(io, asio::use_awaitable);
}

durable::durable_task<> posts_durable(asio::io_context& io, int n) {
  for (int i = 0; i < n; ++i) co_await asio::post(io, durable::use_task);
}

void baseline(benchmark::State& state) {
  asio::io_context io(1);
  for (auto _ : state) {
    asio::co_spawn(io, posts_awaitable(io, awaits), asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * awaits);
}

void durable_use_task(benchmark::State& state) {
  asio::io_context io(1);
  durable::asio_driver driver(io);
  durable::runtime rt{driver.options()};
  driver.drive(rt);
  for (auto _ : state) {
    rt.spawn(posts_durable(io, awaits));
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * awaits);
}

}  // namespace

BENCHMARK(baseline)->Name("asio_post_await/baseline:use_awaitable");
BENCHMARK(durable_use_task)->Name("asio_post_await/durable:use_task");

BENCHMARK_MAIN();

#else

int main() {
  std::puts("bench_asio: this compiler and Asio have no asio::awaitable to compare with; nothing measured");
}

#endif
