// Database faults: while two workers run invocations, the workers' backends are terminated at
// random moments, and once, mid-run, the server stops at once (a crash) and starts again. No
// invocation is stranded, nothing stored is lost, and no write that landed is written twice.
// The test runs a server of its own: it restarts it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"
#include "postgres_support.hpp"


TEST_CASE("backends terminated at random and a server crash strand nothing and lose nothing", "[postgres][processes]") {
  cluster::own_server server;
  const std::string url = server.url();
  const std::string schema = postgres_support::fresh_schema("faults");
  const std::filesystem::path effects = std::filesystem::temp_directory_path() / (schema + ".effects");
  constexpr int invocation_count = 600;

  cluster::submitter submitter(url, schema);
  const std::vector<std::string> ids = cluster::submit(submitter.invocations, "fault", invocation_count);
  cluster::workers workers(url, schema, effects, 3000, 16);
  for (int w = 0; w < 2; ++w) workers.start();

  // The terminator: a random backend of a worker (its store's connection or its heartbeat's)
  // every 20-80 ms.
  std::atomic<bool> stop{false};
  std::atomic<int> terminated{0};
  std::thread terminator([&] {
    std::mt19937 random{std::random_device{}()};
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 80)(random)));
      try {
        const auto r = cluster::query(url,
                                      "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE application_name = 'durable-test-worker' ORDER BY random() LIMIT 1) t");
        terminated += static_cast<int>(r.number(0, 0));
      } catch (const durable::postgres::database_error&) {  // the server is restarting
      }
    }
  });

  // Half-way, the crash.
  const auto half = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < half &&
         cluster::query(url, "SELECT count(*) FROM " + schema + ".invocation WHERE state = 3").number(0, 0) < invocation_count / 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server.crash_and_restart();

  const bool finished = cluster::wait_finished(url, schema, invocation_count, std::chrono::seconds(120));
  stop = true;
  terminator.join();
  workers.stop_all();
  REQUIRE(finished);

  const cluster::verdict v = cluster::check(url, schema, ids, effects);
  INFO(cluster::describe(v));
  WARN(terminated.load() << " backends terminated and one server crash; " << v.steps_run_again
                         << " steps run again (their completion was never stored)");
  CHECK(v.problems.empty());
  CHECK(v.invocations == invocation_count);
  CHECK(v.run_after_stored == 0);
  CHECK(v.duplicate_records == 0);
  CHECK(terminated.load() > 0);
  // Nothing is left held by a worker that stopped.
  CHECK(cluster::query(url, "SELECT count(*) FROM " + schema + ".invocation WHERE state <> 3").number(0, 0) == 0);
}
