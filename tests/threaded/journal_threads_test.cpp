// Journals under concurrent use: appends, make_durable (group commit) and compaction from
// several threads. Threads only record what they saw; every assertion runs on the test thread
// after they are joined.
#include <catch2/catch.hpp>

#include <durable/file_journal.hpp>
#include <durable/journal.hpp>

#include "../journal_support.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <vector>

using durable::journal_record;

namespace {

constexpr int writer_count = 4;
constexpr int appends_per_writer = 150;

/// Payload naming the writer and its sequence number, padded to a size that varies.
std::vector<std::byte> payload_for(int writer, int seq) {
  std::vector<std::byte> out = journal_support::pattern(static_cast<std::size_t>(seq % 50), static_cast<std::uint32_t>(seq));
  out.insert(out.begin(), {static_cast<std::byte>(writer), static_cast<std::byte>(seq & 0xFF),
                           static_cast<std::byte>(seq >> 8)});
  return out;
}

struct writer_log {
  std::vector<std::uint64_t> lsns;  // in the order append returned them
  std::exception_ptr error;
};

/// Every writer appends its records, asking for durability after each one (even seq) or after
/// each batch of five (odd writers), so flushes overlap appends and each other.
std::vector<writer_log> run_writers(durable::journal& j) {
  std::vector<writer_log> logs(writer_count);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < writer_count; ++w) {
    threads.emplace_back([&j, &go, &log = logs[static_cast<std::size_t>(w)], w] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      try {
        for (int seq = 0; seq < appends_per_writer; ++seq) {
          const auto lsn = j.append(static_cast<std::uint8_t>(w + 1), payload_for(w, seq));
          log.lsns.push_back(lsn);
          if (w % 2 == 0 || seq % 5 == 4) j.make_durable(lsn);
        }
      } catch (...) {
        log.error = std::current_exception();
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  return logs;
}

/// The checks shared by every store: each record present exactly once, each writer's records in
/// its own order, lsns unique and increasing per writer, and the store's order the lsn order.
void check_all_records_once(const std::vector<writer_log>& logs, const std::vector<journal_record>& records,
                            std::uint64_t first_lsn) {
  for (const auto& log : logs) REQUIRE_FALSE(log.error);
  REQUIRE(records.size() == static_cast<std::size_t>(writer_count * appends_per_writer));

  std::set<std::uint64_t> all_lsns;
  for (const auto& log : logs) {
    CHECK(std::is_sorted(log.lsns.begin(), log.lsns.end()));
    CHECK(std::adjacent_find(log.lsns.begin(), log.lsns.end()) == log.lsns.end());
    all_lsns.insert(log.lsns.begin(), log.lsns.end());
  }
  CHECK(all_lsns.size() == records.size());  // unique across writers

  // Until compaction, the record with lsn first_lsn + i is at position i.
  for (int w = 0; w < writer_count; ++w) {
    const auto& log = logs[static_cast<std::size_t>(w)];
    for (int seq = 0; seq < appends_per_writer; ++seq) {
      const auto position = log.lsns[static_cast<std::size_t>(seq)] - first_lsn;
      REQUIRE(position < records.size());
      const journal_record expected{static_cast<std::uint8_t>(w + 1), payload_for(w, seq)};
      REQUIRE(records[static_cast<std::size_t>(position)] == expected);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("concurrent appends and make_durable store every record once with unique increasing lsns",
                   "[journal][threads]", journal_support::memory_store, journal_support::file_every_record,
                   journal_support::file_batched, journal_support::file_none) {
  TestType s;
  const auto logs = run_writers(s.journal());
  check_all_records_once(logs, s.journal().records(), 1);
}

TEST_CASE("records appended concurrently all survive reopening", "[journal][threads]") {
  journal_support::temp_dir dir;
  const auto path = dir.file("j");
  std::vector<writer_log> logs;
  {
    durable::file_journal j(path, {.sync = durable::sync_mode::batched});
    logs = run_writers(j);
    j.make_durable(j.last_lsn());
  }
  durable::file_journal j(path);
  check_all_records_once(logs, j.records(), 1);
}

TEST_CASE("group commit makes at most one flush per make_durable call", "[journal][threads]") {
  journal_support::temp_dir dir;
  durable::file_journal j(dir.file("j"), {.sync = durable::sync_mode::batched});
  const auto logs = run_writers(j);
  for (const auto& log : logs) REQUIRE_FALSE(log.error);
  // Even writers ask after every append, odd ones after every fifth.
  const std::uint64_t calls = (writer_count / 2) * appends_per_writer + (writer_count / 2) * (appends_per_writer / 5);
  CHECK(j.syncs() >= 1);
  CHECK(j.syncs() <= calls);
}

TEST_CASE("compaction running alongside appends loses no appended record", "[journal][threads]") {
  journal_support::temp_dir dir;
  durable::file_journal j(dir.file("j"), {.sync = durable::sync_mode::batched});
  std::atomic<bool> writers_done{false};
  std::exception_ptr compactor_error;
  int compactions = 0;
  std::thread compactor([&] {
    try {
      // Keeps everything: the point is that records written before, during and after each
      // compaction all end up in the file, and flush leaders never use a replaced descriptor.
      do {
        j.compact([](const journal_record&) { return true; });
        ++compactions;
      } while (!writers_done.load(std::memory_order_acquire));
    } catch (...) {
      compactor_error = std::current_exception();
    }
  });
  const auto logs = run_writers(j);
  writers_done.store(true, std::memory_order_release);
  compactor.join();
  REQUIRE_FALSE(compactor_error);
  CHECK(compactions >= 1);
  check_all_records_once(logs, j.records(), 1);
}
