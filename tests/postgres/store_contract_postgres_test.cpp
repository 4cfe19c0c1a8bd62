// The store contract (tests/store_contract.hpp) over durable::postgres::store, against a real
// server, in both commit modes: each test case in a schema of its own, dropped at its end.
#include <catch2/catch.hpp>

#include <durable/postgres/store.hpp>

#include <memory>
#include <string>

#include "postgres_support.hpp"
#include "store_contract_support.hpp"

namespace {

using store_contract::test_clock;

template <durable::postgres::commit_mode Mode>
struct postgres_fixture {
  test_clock time;
  std::string schema = postgres_support::fresh_schema();
  std::unique_ptr<durable::postgres::store> made = make();
  std::unique_ptr<durable::postgres::store> make() {
    return std::make_unique<durable::postgres::store>(durable::postgres::store_options{
        .connection = postgres_support::connection_string(), .schema = schema, .now = time.now_function(), .commit = Mode});
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

using every_record_store = postgres_fixture<durable::postgres::commit_mode::every_record>;
using batched_store = postgres_fixture<durable::postgres::commit_mode::batched>;

}  // namespace

#define STORE_TYPES every_record_store, batched_store
#define RESTARTABLE_STORE_TYPES every_record_store, batched_store
#include "store_contract.hpp"
