// The store contract (tests/store_contract.hpp) over the stores of the core: memory_store, and
// journal_store over a memory_journal and over a file_journal.
#include <catch2/catch.hpp>

#include <durable/detail/hash_index.hpp>
#include <durable/file_journal.hpp>
#include <durable/journal.hpp>
#include <durable/journal_store.hpp>
#include <durable/memory_store.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "journal_support.hpp"
#include "store_contract_support.hpp"

namespace {

using store_contract::test_clock;

struct memory_store_fixture {
  test_clock time;
  std::unique_ptr<durable::memory_store> made = std::make_unique<durable::memory_store>(time.now_function());
  durable::invocation_store& store() { return *made; }
};

struct memory_journal_fixture {
  test_clock time;
  durable::memory_journal log;
  std::unique_ptr<durable::journal_store> made = make();
  std::unique_ptr<durable::journal_store> make() {
    return std::make_unique<durable::journal_store>(log, durable::journal_store_options{.now = time.now_function()});
  }
  durable::invocation_store& store() { return *made; }
  void restart() {
    made.reset();
    made = make();
  }
};

struct file_journal_fixture {
  test_clock time;
  journal_support::temp_dir dir;
  std::unique_ptr<durable::file_journal> log = std::make_unique<durable::file_journal>(dir.file("store.journal"));
  std::unique_ptr<durable::journal_store> made = make();
  std::unique_ptr<durable::journal_store> make() {
    return std::make_unique<durable::journal_store>(*log, durable::journal_store_options{.now = time.now_function()});
  }
  durable::invocation_store& store() { return *made; }
  void restart() {  // what a crash and a new process see: the file
    made.reset();
    log.reset();
    log = std::make_unique<durable::file_journal>(dir.file("store.journal"));
    made = make();
  }
};

}  // namespace

#define STORE_TYPES memory_store_fixture, memory_journal_fixture, file_journal_fixture
#define RESTARTABLE_STORE_TYPES memory_journal_fixture, file_journal_fixture
#include "store_contract.hpp"

TEST_CASE("the finished index finds each of several ids that share a hash", "[store]") {
  durable::detail::hash_index index;
  for (std::uint64_t p = 0; p < 5; ++p) index.insert(42, p);
  for (std::uint64_t p = 0; p < 200; ++p) index.insert(1000 + p, 100 + p);
  std::vector<std::uint64_t> seen;
  CHECK_FALSE(index.find(42, [&](std::uint64_t p) {
    seen.push_back(p);
    return false;
  }));
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::uint64_t>{0, 1, 2, 3, 4});
  CHECK(index.find(1000 + 77, [](std::uint64_t p) { return p == 177; }));
  CHECK_FALSE(index.may_contain(7));
  CHECK(index.size() == 205);
}
