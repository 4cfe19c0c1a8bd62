// The g++ 12 co_await temporary shapes (CPP_NOTES.md; GCC 100611, 107288, 101367), written the
// way durable's users are told to write them on g++ 12: the temporary in a named local before
// the co_await. Run under ASan in CI: a regression shows up as a double free.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <string>

using durable::durable_task;

namespace {

struct request {
  std::string name;
  int copies;
};

durable_task<std::size_t> process(request r) {
  co_return r.name.size() * static_cast<std::size_t>(r.copies);
}
durable_task<int> left() { co_return 1; }
durable_task<int> right() { co_return 2; }

template <class T, class P>
T run(durable_task<T, P> task) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  return rt.run(std::move(task));
}

}  // namespace

TEST_CASE("a capturing lambda given to durable::call is kept in a named local", "[gcc-shapes]") {
  auto body = []() -> durable_task<std::size_t> {
    std::string captured(64, 'x');  // longer than the small-string buffer: heap-allocated
    auto work = [captured](std::size_t extra) -> durable_task<std::size_t> {
      co_return captured.size() + extra;
    };
    auto call = durable::call(work, std::size_t{1});
    co_return co_await call;
  };
  CHECK(run(body()) == 65);
}

TEST_CASE("a braced aggregate with a string member is built before the co_await",
          "[gcc-shapes]") {
  auto body = []() -> durable_task<std::size_t> {
    request r{std::string(64, 'y'), 2};
    auto task = process(std::move(r));
    co_return co_await task;
  };
  CHECK(run(body()) == 128);
}

TEST_CASE("a conditional choice of task is made before the co_await", "[gcc-shapes]") {
  auto body = [](bool pick_left) -> durable_task<int> {
    auto chosen = pick_left ? left() : right();
    co_return co_await chosen;
  };
  CHECK(run(body(true)) == 1);
  CHECK(run(body(false)) == 2);
}

TEST_CASE("a prvalue string argument inside the co_await expression is safe", "[gcc-shapes]") {
  auto echo = [](std::string s) -> durable_task<std::string> { co_return s; };
  auto body = [&echo]() -> durable_task<std::size_t> {
    std::string got = co_await echo(std::string(64, 'z'));
    co_return got.size();
  };
  CHECK(run(body()) == 64);
}
