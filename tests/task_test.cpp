// durable_task<T, Policy>: lazy start, results of every kind, failure propagation, ownership.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

using durable::durable_task;

namespace {

// Counts live instances, so tests can see that frames are destroyed and locals released.
struct tracked {
  static inline int live = 0;
  tracked() { ++live; }
  tracked(const tracked&) { ++live; }
  ~tracked() { --live; }
};

struct app_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T, class P>
T run(durable_task<T, P> task) {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  return rt.run(std::move(task));
}

durable_task<int> answer(bool& started) {
  started = true;
  co_return 42;
}

}  // namespace

TEST_CASE("a task does not start until it is run", "[task]") {
  bool started = false;
  auto task = answer(started);
  CHECK_FALSE(started);
  CHECK(run(std::move(task)) == 42);
  CHECK(started);
}

TEST_CASE("awaiting a task yields its value", "[task]") {
  auto body = []() -> durable_task<std::string> {
    auto inner = []() -> durable_task<std::string> { co_return "inner"; };
    std::string got = co_await inner();
    co_return got + "+outer";
  };
  CHECK(run(body()) == "inner+outer");
}

TEST_CASE("a void task runs to completion", "[task]") {
  int effects = 0;
  auto body = [&effects]() -> durable_task<> {
    ++effects;
    co_return;
  };
  auto outer = [&body, &effects]() -> durable_task<> {
    auto first = body();
    co_await first;
    auto second = body();
    co_await second;
    ++effects;
  };
  run(outer());
  CHECK(effects == 3);
}

TEST_CASE("a task can return a reference to an object that outlives it", "[task]") {
  int storage = 1;
  auto ref = [&storage]() -> durable_task<int&> { co_return storage; };
  auto outer = [&ref]() -> durable_task<int*> {
    int& r = co_await ref();
    r = 7;
    co_return &r;
  };
  int* p = run(outer());
  CHECK(p == &storage);
  CHECK(storage == 7);
}

TEST_CASE("a task can return a move-only value", "[task]") {
  auto make = []() -> durable_task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); };
  auto outer = [&make]() -> durable_task<std::unique_ptr<int>> {
    std::unique_ptr<int> p = co_await make();
    *p += 1;
    co_return p;
  };
  std::unique_ptr<int> result = run(outer());
  REQUIRE(result != nullptr);
  CHECK(*result == 6);
}

TEST_CASE("an exception travels through several levels as its own type", "[task]") {
  auto leaf = []() -> durable_task<int> {
    throw app_error("deep");
    co_return 0;
  };
  auto middle = [&leaf]() -> durable_task<int> { co_return co_await leaf() + 1; };
  auto top = [&middle]() -> durable_task<std::string> {
    try {
      static_cast<void>(co_await middle());
    } catch (const app_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
  };
  CHECK(run(top()) == "caught deep");
}

TEST_CASE("an uncaught exception reaches run as a failure with its cause", "[task]") {
  auto leaf = []() -> durable_task<int> {
    throw std::out_of_range("index 9");
    co_return 0;
  };
  auto top = [&leaf]() -> durable_task<int> { co_return co_await leaf(); };
  try {
    run(top());
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.code() == durable::status::invalid_argument);
    CHECK(f.attempts() == 1);
    CHECK(f.function_name().empty());
    REQUIRE(f.cause() != nullptr);
    CHECK_THROWS_AS(std::rethrow_exception(f.cause()), std::out_of_range);
    CHECK(std::string(f.what()).find("index 9") != std::string::npos);
  }
}

TEST_CASE("destroying a task that never ran releases its frame", "[task]") {
  auto body = [](tracked t) -> durable_task<int> {
    static_cast<void>(t);
    co_return 1;
  };
  {
    auto task = body(tracked{});
    CHECK(tracked::live == 1);
  }
  CHECK(tracked::live == 0);
}

TEST_CASE("destroying a task that failed releases everything", "[task]") {
  auto body = [](tracked t) -> durable_task<int> {
    static_cast<void>(t);
    throw app_error("boom");
    co_return 1;
  };
  CHECK_THROWS_AS(run(body(tracked{})), durable::failure);
  CHECK(tracked::live == 0);
}

TEST_CASE("destroying a half-finished chain releases every frame in it", "[task]") {
  // The leaf waits on a retry timer; destroying the runtime destroys the chain that waits.
  auto leaf_fn = [](tracked t) -> durable_task<int> {
    static_cast<void>(t);
    throw durable::error(durable::status::temporary_error, "not yet");
    co_return 1;
  };
  auto top = [&leaf_fn](tracked t) -> durable_task<int> {
    static_cast<void>(t);
    auto call = durable::call(leaf_fn, tracked{});
    co_return co_await call;
  };
  auto quick = []() -> durable_task<int> { co_return 0; };
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    rt.spawn(top(tracked{}));
    rt.run(quick());  // runs the spawned chain until its call waits for a retry
    CHECK(tracked::live == 2);  // top's argument and the call's stored copy
  }
  CHECK(tracked::live == 0);
}

TEST_CASE("awaiting a task consumes it", "[task]") {
  auto leaf = []() -> durable_task<int> { co_return 3; };
  auto top = [&leaf]() -> durable_task<bool> {
    auto t = leaf();
    int v = co_await t;
    co_return v == 3 && !t.valid();
  };
  CHECK(run(top()));
}

TEST_CASE("awaiting an empty task is a permanent error, not a crash", "[task]") {
  auto top = []() -> durable_task<int> {
    durable_task<int> empty;
    co_return co_await empty;
  };
  try {
    run(top());
    FAIL("run returned");
  } catch (const durable::failure& f) {
    CHECK(f.code() == durable::status::permanent_error);
  }
}

TEST_CASE("a task is movable and the moved-from task is empty", "[task]") {
  auto leaf = []() -> durable_task<int> { co_return 3; };
  auto a = leaf();
  durable_task<int> b = std::move(a);
  CHECK_FALSE(a.valid());
  CHECK(b.valid());
  a = std::move(b);
  CHECK(a.valid());
  CHECK(run(std::move(a)) == 3);
}
