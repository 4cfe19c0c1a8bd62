// The store contract (tests/store_contract.hpp) over durable::postgres::store, against a real
// server: each test case in a schema of its own, dropped at its end.
#include <catch2/catch.hpp>

#include <durable/postgres/store.hpp>

#include <memory>
#include <string>

#include "postgres_support.hpp"
#include "store_contract_support.hpp"

namespace {

using store_contract::test_clock;

struct postgres_fixture {
  test_clock time;
  std::string schema = postgres_support::fresh_schema();
  std::unique_ptr<durable::postgres::store> made = make();
  std::unique_ptr<durable::postgres::store> make() {
    return std::make_unique<durable::postgres::store>(durable::postgres::store_options{
        .connection = postgres_support::connection_string(), .schema = schema, .now = time.now_function()});
  }
  durable::invocation_store& store() { return *made; }
  void restart() {  // a new process on the same database
    made.reset();
    made = make();
  }
  postgres_fixture() = default;
  postgres_fixture(const postgres_fixture&) = delete;
  postgres_fixture& operator=(const postgres_fixture&) = delete;
  ~postgres_fixture() {
    try {
      made->drop_schema();
    } catch (...) {
    }
  }
};

}  // namespace

#define STORE_TYPES postgres_fixture
#define RESTARTABLE_STORE_TYPES postgres_fixture
#include "store_contract.hpp"
