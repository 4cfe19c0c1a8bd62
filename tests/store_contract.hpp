// The contract every invocation store passes (durable/invocation_store.hpp), as test cases over
// the fixtures its includer names: define STORE_TYPES (every store's fixture) and
// RESTARTABLE_STORE_TYPES (those whose records survive `restart()`), then include this once.
// A fixture has `store()`, `time.clock` (a manual clock the store's `now` reads) and, if
// restartable, `restart()`: what a crash and a new process see.
#pragma once

#include <catch2/catch.hpp>

#include <durable/codec.hpp>
#include <durable/invocation_store.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include "store_contract_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#if !defined(STORE_TYPES) || !defined(RESTARTABLE_STORE_TYPES)
#error "define STORE_TYPES and RESTARTABLE_STORE_TYPES before including store_contract.hpp"
#endif


using namespace store_contract;
using namespace std::chrono_literals;


TEMPLATE_TEST_CASE("start creates an invocation and hands its lease to the caller", "[store]", STORE_TYPES) {
  TestType f;
  const auto reply = f.store().start("a", "flow", started_bytes("a"));
  REQUIRE(reply.claimed);
  CHECK_FALSE(reply.existing);
  CHECK(reply.claimed->owner.invocation == "a");
  CHECK(reply.claimed->started == durable::journal_record{started_type, started_bytes("a")});
  CHECK(reply.claimed->records.empty());
  const auto view = f.store().read("a");
  REQUIRE(view);
  CHECK(view->state == durable::stored_state::running);
  CHECK(view->function == "flow");
}

TEMPLATE_TEST_CASE("start of an id someone holds returns what exists and stores nothing", "[store]", STORE_TYPES) {
  TestType f;
  const auto first = f.store().start("a", "flow", started_bytes("a"));
  const auto again = f.store().start("a", "flow", started_bytes("a", "other"));
  CHECK_FALSE(again.claimed);
  REQUIRE(again.existing);
  CHECK(again.existing->state == durable::stored_state::running);
  CHECK(again.existing->function == "flow");
  // The first holder still writes: the second start took nothing from it.
  CHECK(f.store().append(first.claimed->owner, wait_type, completion_bytes("a", {0, 0}, 1)) == 1);
}

TEMPLATE_TEST_CASE("appends are numbered from 1 and come back in order with the next claim", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  CHECK(f.store().append(owner, completed_type, completion_bytes("a", {0, 0}, 10)) == 1);
  CHECK(f.store().append(owner, completed_type, completion_bytes("a", {0, 1}, 11)) == 2);
  CHECK(f.store().append(owner, completed_type, completion_bytes("a", {0, 2}, 12)) == 3);
  static_cast<void>(f.store().make_durable(owner, 3));
  f.store().release(owner);
  const auto claimed = f.store().claim(10);
  REQUIRE(claimed.size() == 1);
  REQUIRE(claimed[0].records.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(decoded(claimed[0].records[i]).value == durable::encode(std::int64_t(10 + i)));
  CHECK(claimed[0].owner.epoch > owner.epoch);
}

TEMPLATE_TEST_CASE("a write under a lease that was claimed again is refused and stores nothing", "[store]",
                   STORE_TYPES) {
  TestType f;
  const durable::lease old = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  CHECK(f.store().append(old, completed_type, completion_bytes("a", {0, 0}, 1)) == 1);
  f.store().release(old);
  const auto taken = f.store().claim(1);
  REQUIRE(taken.size() == 1);
  const durable::lease current = taken[0].owner;
  CHECK(current.epoch == old.epoch + 1);
  CHECK_THROWS_AS(f.store().append(old, completed_type, completion_bytes("a", {0, 1}, 2)), durable::ownership_lost);
  CHECK_THROWS_AS(f.store().make_durable(old, 1), durable::ownership_lost);
  CHECK_THROWS_AS(f.store().finish(old, completed_type, outcome_bytes("a", 3)), durable::ownership_lost);
  // The current holder's next record follows its own first one: nothing of the old holder landed.
  CHECK(f.store().append(current, completed_type, completion_bytes("a", {0, 1}, 4)) == 2);
  f.store().release(current);
  const auto again = f.store().claim(1);
  REQUIRE(again.size() == 1);
  REQUIRE(again[0].records.size() == 2);
  CHECK(decoded(again[0].records[1]).value == durable::encode(std::int64_t{4}));
}

TEMPLATE_TEST_CASE("release by a holder that is no longer current does nothing", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease old = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  f.store().release(old);
  const durable::lease current = f.store().claim(1).at(0).owner;
  f.store().release(old);
  CHECK(f.store().claim(1).empty());
  CHECK(f.store().read("a")->state == durable::stored_state::running);
  CHECK(f.store().append(current, completed_type, completion_bytes("a", {0, 0}, 1)) == 1);
}

TEMPLATE_TEST_CASE("make_durable of a seq that was never returned is refused", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  CHECK(f.store().append(owner, completed_type, completion_bytes("a", {0, 0}, 1)) == 1);
  CHECK_THROWS_AS(f.store().make_durable(owner, 2), std::invalid_argument);
  CHECK_FALSE(f.store().make_durable(owner, 1).cancel_requested);
}

TEMPLATE_TEST_CASE("a finished invocation is read back with its outcome and takes no more writes", "[store]",
                   STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  static_cast<void>(f.store().append(owner, completed_type, completion_bytes("a", {0, 0}, 1)));
  f.store().finish(owner, completed_type, outcome_bytes("a", 42));
  const auto view = f.store().read("a");
  REQUIRE(view);
  CHECK(view->state == durable::stored_state::finished);
  CHECK(view->function == "flow");
  REQUIRE(view->outcome);
  CHECK(decoded(*view->outcome).value == durable::encode(std::int64_t{42}));
  CHECK_THROWS_AS(f.store().append(owner, completed_type, completion_bytes("a", {0, 1}, 2)), durable::ownership_lost);
  CHECK(f.store().claim(10).empty());
  const auto again = f.store().start("a", "flow", started_bytes("a"));
  CHECK_FALSE(again.claimed);
  REQUIRE(again.existing);
  CHECK(again.existing->state == durable::stored_state::finished);
  CHECK(f.store().finished_count() == 1);
}

TEMPLATE_TEST_CASE("an id the store does not know reads as nothing", "[store]", STORE_TYPES) {
  TestType f;
  CHECK_FALSE(f.store().read("nobody"));
  CHECK(f.store().request_cancel("nobody") == durable::cancel_reply::unknown);
}

TEMPLATE_TEST_CASE("claim takes the oldest ready invocations, at most as many as asked", "[store]", STORE_TYPES) {
  TestType f;
  std::vector<durable::lease> leases;
  for (const std::string id : {"a", "b", "c"}) leases.push_back(f.store().start(id, "flow", started_bytes(id)).claimed->owner);
  for (auto it = leases.rbegin(); it != leases.rend(); ++it) f.store().release(*it);
  const auto first = f.store().claim(2);
  REQUIRE(first.size() == 2);
  CHECK(first[0].owner.invocation == "a");
  CHECK(first[1].owner.invocation == "b");
  const auto rest = f.store().claim(2);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].owner.invocation == "c");
  CHECK(f.store().claim(2).empty());
}

TEMPLATE_TEST_CASE("a parked invocation is claimed again once its wake-up time has come", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  static_cast<void>(f.store().append(owner, wait_type, completion_bytes("a", {0, 0}, 1)));
  f.store().park(owner, f.time.clock.now() + 1h);
  CHECK(f.store().read("a")->state == durable::stored_state::parked);
  CHECK(f.store().claim(10).empty());
  CHECK_THROWS_AS(f.store().append(owner, completed_type, completion_bytes("a", {0, 1}, 2)), durable::ownership_lost);
  f.time.clock.advance(59min);
  CHECK(f.store().claim(10).empty());
  f.time.clock.advance(1min);
  const auto woken = f.store().claim(10);
  REQUIRE(woken.size() == 1);
  CHECK(woken[0].records.size() == 1);
  CHECK(woken[0].owner.epoch == owner.epoch + 1);
}

TEMPLATE_TEST_CASE("start of a parked id that is not due returns its view", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  f.store().park(owner, f.time.clock.now() + 1h);
  const auto again = f.store().start("a", "flow", started_bytes("a"));
  CHECK_FALSE(again.claimed);
  CHECK(again.existing->state == durable::stored_state::parked);
}

TEMPLATE_TEST_CASE("start of an unfinished id that nobody holds hands it out with its records", "[store]",
                   STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  static_cast<void>(f.store().append(owner, completed_type, completion_bytes("a", {0, 0}, 5)));
  f.store().release(owner);
  const auto again = f.store().start("a", "flow", started_bytes("a"));
  REQUIRE(again.claimed);
  CHECK(again.claimed->owner.epoch == owner.epoch + 1);
  CHECK(again.claimed->records.size() == 1);
}

TEMPLATE_TEST_CASE("cancelling an invocation nobody holds finishes it as cancelled", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  f.store().release(owner);
  CHECK(f.store().request_cancel("a") == durable::cancel_reply::cancelled);
  const auto view = f.store().read("a");
  REQUIRE(view);
  CHECK(view->state == durable::stored_state::finished);
  REQUIRE(view->outcome);
  CHECK(decoded(*view->outcome).reason == durable::failure_reason::cancelled);
  CHECK(f.store().claim(10).empty());
  CHECK(f.store().request_cancel("a") == durable::cancel_reply::finished);
}

TEMPLATE_TEST_CASE("cancelling a held invocation tells its holder at the next checkpoint", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  const std::uint64_t seq = f.store().append(owner, completed_type, completion_bytes("a", {0, 0}, 1));
  CHECK_FALSE(f.store().make_durable(owner, seq).cancel_requested);
  CHECK(f.store().request_cancel("a") == durable::cancel_reply::requested);
  CHECK(f.store().make_durable(owner, seq).cancel_requested);
  CHECK(f.store().read("a")->cancel_requested);
  // Released unfinished, it is handed out with the request, to be ended without running.
  f.store().release(owner);
  const auto claimed = f.store().claim(1);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].cancel_requested);
}

TEMPLATE_TEST_CASE("forgetting finished invocations deletes them and keeps the unfinished", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease done = f.store().start("done", "flow", started_bytes("done")).claimed->owner;
  f.store().finish(done, completed_type, outcome_bytes("done", 1));
  const durable::lease running = f.store().start("running", "flow", started_bytes("running")).claimed->owner;
  static_cast<void>(f.store().append(running, completed_type, completion_bytes("running", {0, 0}, 2)));
  CHECK(f.store().forget_finished() == 1);
  CHECK(f.store().finished_count() == 0);
  CHECK_FALSE(f.store().read("done"));
  CHECK(f.store().read("running")->state == durable::stored_state::running);
  CHECK(f.store().append(running, completed_type, completion_bytes("running", {0, 1}, 3)) == 2);
  // A forgotten id starts afresh.
  const auto fresh = f.store().start("done", "flow", started_bytes("done"));
  REQUIRE(fresh.claimed);
  CHECK(fresh.claimed->records.empty());
}

TEMPLATE_TEST_CASE("a finished outcome is found among many finished invocations", "[store]", STORE_TYPES) {
  TestType f;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "inv-" + std::to_string(i);
    const durable::lease owner = f.store().start(id, "flow", started_bytes(id)).claimed->owner;
    static_cast<void>(f.store().append(owner, completed_type, completion_bytes(id, {0, 0}, i)));
    f.store().finish(owner, completed_type, outcome_bytes(id, 1000 + i));
  }
  CHECK(f.store().finished_count() == 300);
  for (const int i : {0, 1, 150, 299}) {
    const auto view = f.store().read("inv-" + std::to_string(i));
    REQUIRE(view);
    CHECK(decoded(*view->outcome).value == durable::encode(std::int64_t(1000 + i)));
  }
}

TEMPLATE_TEST_CASE("wait_for_work returns when an invocation is released by another thread", "[store]", STORE_TYPES) {
  TestType f;
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  std::thread releaser([&] { f.store().release(owner); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;  // bounds the test, never reached when it passes
  std::vector<durable::claimed_invocation> claimed;
  while (claimed.empty() && std::chrono::steady_clock::now() < deadline) {
    f.store().wait_for_work(std::chrono::milliseconds(10'000));
    claimed = f.store().claim(1);
  }
  releaser.join();
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].owner.invocation == "a");
}

TEMPLATE_TEST_CASE("bad input is refused and stores nothing", "[store]", STORE_TYPES) {
  TestType f;
  CHECK_THROWS_AS(f.store().start("", "flow", started_bytes("")), std::invalid_argument);
  CHECK_THROWS_AS(f.store().start("a", "", started_bytes("a")), std::invalid_argument);
  CHECK_FALSE(f.store().read("a"));
  const durable::lease owner = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  CHECK_THROWS_AS(f.store().append(owner, 0, completion_bytes("a", {0, 0}, 1)), std::invalid_argument);
  CHECK(f.store().append(owner, completed_type, completion_bytes("a", {0, 0}, 1)) == 1);
  CHECK_THROWS_AS(f.store().append(durable::lease{"nobody", 1}, completed_type, completion_bytes("x", {0, 0}, 1)),
                  durable::ownership_lost);
  CHECK_FALSE(f.store().read("nobody"));
}

TEMPLATE_TEST_CASE("after a restart, unfinished invocations are claimed with their durable records", "[store]",
                   RESTARTABLE_STORE_TYPES) {
  TestType f;
  const durable::lease a = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  const std::uint64_t seq = f.store().append(a, completed_type, completion_bytes("a", {0, 0}, 5));
  static_cast<void>(f.store().make_durable(a, seq));
  const durable::lease b = f.store().start("b", "flow", started_bytes("b")).claimed->owner;
  f.store().finish(b, completed_type, outcome_bytes("b", 9));
  f.restart();
  const auto claimed = f.store().claim(10);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].owner.invocation == "a");
  REQUIRE(claimed[0].records.size() == 1);
  CHECK(decoded(claimed[0].records[0]).value == durable::encode(std::int64_t{5}));
  const auto view = f.store().read("b");
  REQUIRE(view);
  CHECK(view->state == durable::stored_state::finished);
  CHECK(decoded(*view->outcome).value == durable::encode(std::int64_t{9}));
  CHECK(f.store().finished_count() == 1);
}

TEMPLATE_TEST_CASE("after a restart, a cancel of an invocation nobody held stays", "[store]",
                   RESTARTABLE_STORE_TYPES) {
  TestType f;
  const durable::lease a = f.store().start("a", "flow", started_bytes("a")).claimed->owner;
  f.store().release(a);
  CHECK(f.store().request_cancel("a") == durable::cancel_reply::cancelled);
  f.restart();
  CHECK(f.store().claim(10).empty());
  CHECK(decoded(*f.store().read("a")->outcome).reason == durable::failure_reason::cancelled);
}

