// Kill -9: three workers, one of them killed at random every 50-300 ms and replaced, for a
// minute ($DURABLE_TEST_KILL_SECONDS), while invocations keep arriving. Every invocation
// finishes with the right result, no step whose completion was stored runs again, and the
// invocations a killed worker held are taken over; how long that took is reported.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"
#include "postgres_support.hpp"

namespace {

// A killed worker's invocations, watched until every one is owned by a live worker or finished.
struct takeover {
  std::chrono::steady_clock::time_point killed;
  std::string worker;
  std::vector<std::string> ids;
};

}  // namespace

TEST_CASE("workers killed at random: every invocation finishes right, no stored step runs again", "[postgres][processes]") {
  const std::string url = postgres_support::connection_string();
  const std::string schema = postgres_support::fresh_schema("kill");
  const std::filesystem::path effects = std::filesystem::temp_directory_path() / (schema + ".effects");
  const int seconds = std::getenv("DURABLE_TEST_KILL_SECONDS") != nullptr ? std::atoi(std::getenv("DURABLE_TEST_KILL_SECONDS")) : 60;
  constexpr int lease_ms = 1000;
  constexpr int poll_ms = 100;  // the worker's serve_options::poll (worker.cpp)

  cluster::submitter submitter(url, schema, lease_ms);
  std::vector<std::string> ids;
  auto submit = [&](int count) {
    const auto more = cluster::submit(submitter.invocations, "kill", count, ids.size());
    ids.insert(ids.end(), more.begin(), more.end());
  };
  submit(200);

  // Room for every invocation at once: a takeover needs a worker with a free slot, and a
  // killed worker's invocations waiting for one would measure the backlog, not the takeover.
  cluster::workers workers(url, schema, effects, lease_ms, 512);
  for (int w = 0; w < 3; ++w) workers.start();

  // The watcher: how long each killed worker's invocations took to be taken over.
  std::mutex watched_mutex;
  std::vector<takeover> watched;
  std::vector<double> takeover_ms;
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    // Once the driver is done, one last pass: by then every invocation has finished (or the
    // test fails on that), so what is still watched is settled, and the watcher never hangs.
    for (bool last = false; !last;) {
      last = done.load();
      // Real time: it watches other processes, which run on the real clock (no manual_clock
      // reaches them); 10 ms is the resolution of the takeover times it reports.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::lock_guard lock(watched_mutex);
      std::erase_if(watched, [&](const takeover& t) {
        const auto left = cluster::query(url,
                                         "SELECT count(*) FROM " + schema + ".invocation WHERE id = ANY($1::text[]) AND "
                                         "state IN (0, 1) AND (owner IS NULL OR owner = $2)",
                                         durable::postgres::parameters().text_array(t.ids).text(t.worker));
        if (left.number(0, 0) != 0) return false;
        takeover_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t.killed).count());
        return true;
      });
    }
  });

  std::mt19937 random{std::random_device{}()};
  int kills = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    // Real time is the point here: the workers run on it.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 300)(random)));
    submit(8);
    const pid_t victim = workers.running()[std::uniform_int_distribution<std::size_t>(0, workers.running().size() - 1)(random)];
    const auto name = cluster::query(url, "SELECT id FROM " + schema + ".worker WHERE pid = $1",
                                     durable::postgres::parameters().number(victim));
    workers.stop(victim, SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    ++kills;
    workers.start();
    if (name.rows() == 1) {  // it had registered: watch what it held
      const auto held = cluster::query(url, "SELECT id FROM " + schema + ".invocation WHERE state = 1 AND owner = $1",
                                       durable::postgres::parameters().text(name.text(0, 0)));
      takeover t{killed, name.text(0, 0), {}};
      for (int row = 0; row < held.rows(); ++row) t.ids.push_back(held.text(row, 0));
      if (!t.ids.empty()) {
        std::lock_guard lock(watched_mutex);
        watched.push_back(std::move(t));
      }
    }
  }
  const bool finished = cluster::wait_finished(url, schema, static_cast<std::int64_t>(ids.size()), std::chrono::seconds(90));
  done = true;
  watcher.join();
  workers.stop_all();
  REQUIRE(finished);

  const cluster::verdict v = cluster::check(url, schema, ids, effects);
  INFO(cluster::describe(v));
  std::sort(takeover_ms.begin(), takeover_ms.end());
  const double slowest = takeover_ms.empty() ? 0 : takeover_ms.back();
  const double median = takeover_ms.empty() ? 0 : takeover_ms[takeover_ms.size() / 2];
  const auto within_bound = std::count_if(takeover_ms.begin(), takeover_ms.end(),
                                          [&](double ms) { return ms <= lease_ms + 2 * poll_ms + 10; });
  WARN(kills << " kills in " << seconds << " s, " << ids.size() << " invocations, " << v.steps_run_again
             << " steps run again (begun before the kill, never stored); takeovers watched: " << takeover_ms.size()
             << ", median " << median << " ms, slowest " << slowest << " ms, " << within_bound
             << " within lease + 2 polls + the watcher's 10 ms (lease " << lease_ms << " ms, poll " << poll_ms << " ms)");
  CHECK(v.problems.empty());
  CHECK(v.invocations == ids.size());
  CHECK(v.run_after_stored == 0);
  CHECK(v.duplicate_records == 0);
  CHECK(kills > 0);
  CHECK(watched.empty());  // every killed worker's invocations were taken over
  // The takeover times are reported above, not asserted: the design bounds them by lease + 2
  // polls (the lease runs out, then a free worker's next poll reaps and claims), and a quiet
  // machine shows that, but on a loaded one (CI runs this beside compilers) a worker's poll is
  // late by however long the scheduler keeps it off the cores, and a test must not fail on that.
  std::filesystem::remove(effects);
  submitter.store.drop_schema();
}
